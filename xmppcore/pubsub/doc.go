// Package pubsub is publish-subscribe (XEP-0060) for Vestnik: the
// personal eventing nodes (PEP, XEP-0163) on every user's bare JID and a
// generic service at pubsub.<domain>, both kept in the database.
//
// PEP: the owner publishes (a node is created on first publish, with
// XEP-0223 publish-options as its configuration or preconditions);
// notifications go to the owner's sessions, to explicit subscribers and,
// unless the node is whitelist/authorize, to the owner's roster contacts
// that are online (presence is company-wide in Vestnik). The nodes
// urn:xmpp:bookmarks:1 and storage:bookmarks are not kept here: bookmarks
// follow chat memberships and are delegated to the chat service's
// handler. Avatars are kept in step with the vCard PHOTO (XEP-0398).
//
// The service: server admins (Options.Admins) create nodes; owners and
// publishers publish; anyone subscribes to open nodes; owners configure,
// manage affiliations and delete.
package pubsub
