package muc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"

	"mellium.im/xmpp/jid"

	"vestnik/roster"
	"vestnik/xmppcore"
	"vestnik/xmppcore/mam"
	"vestnik/xmppcore/rich"
)

// Router is what the service needs from the XMPP server: routing stanzas to
// sessions without waiting on them (xmppcore.Server implements it).
type Router interface {
	Route(ctx context.Context, el *xmppcore.Element)
	SendToUser(userID int64, el *xmppcore.Element)
}

// Options tune the service. Zero values are the documented defaults.
type Options struct {
	// Domain is the XMPP domain; the service is at "conference."+Domain.
	Domain string
	// HideHistory is the server-wide default for hide_history when a
	// request does not say (false: new members see earlier messages).
	HideHistory bool
	// HistoryOnJoin is how many recent messages a joining occupant gets
	// (default 20; negative: none).
	HistoryOnJoin int
	// Admins are the logins of server admins: in the MUC protocol they
	// act as the owner of every room (configure, change members,
	// destroy).
	Admins []string
	// Files is the file store (package upload): a chat message whose body
	// carries a stored file's URL is archived with it (xmppcore.AttachFiles).
	Files xmppcore.Files
	// MessageRate is how many messages per second one author may post to
	// one chat, sustained, with MessageBurst at once (defaults
	// DefaultMessageRate, DefaultMessageBurst; a negative rate: no
	// limit). System messages and the integration (author 0) are not
	// limited. Over it a post fails with ErrRateLimited.
	MessageRate  float64
	MessageBurst int
	Logger       *slog.Logger
	// OnMembersAdded, if set, is told once per change (on the node that
	// made it) that users became members of a chat — made with them or
	// added — by actor (0: the integration or the server): the outgoing
	// event chat.member_added (package webhook). It must not block long.
	OnMembersAdded func(ctx context.Context, chatID, actor int64, users []int64)
}

// GetChatID is the command that answers the sender alone with the chat id.
const GetChatID = "/getChatId"

// MaxBody bounds a chat message body in bytes.
const MaxBody = 64 << 10

// MaxPassword bounds a room password in bytes.
const MaxPassword = 256

// Service is the chat service: the rules, posting and fan-out, and the
// XEP-0045 component at conference.<domain>.
type Service struct {
	store   *Store
	router  Router
	archive *mam.Store
	users   *roster.Store
	opts    Options
	host    string // conference.<domain>
	node    string // this instance, among the nodes of a cluster (remote.go)
	log     *slog.Logger

	dir      mam.Directory // JIDs for MAM results of room archives
	cache    userCache
	changes  Changes  // edits, retractions, reactions (set by Register)
	notifier Notifier // mentions (set by Register)

	limits postLimiters // per author and chat message rate

	watchMu  sync.Mutex     // orders watch transitions (cluster.go)
	watching map[int64]bool // chats whose traffic this node gets from the others
	synced   map[int64]bool // watched chats whose remote occupants this node was told (watchMu)
	events   recentIDs      // chat events handled, for those that come twice (cluster.go)

	mu    sync.RWMutex // guards rooms, follows and followers (the maps only)
	rooms map[int64]*room
	// Sessions that follow all their user's chats without joining rooms
	// (the bridge): user id → full JIDs, and chat id → full JIDs.
	follows   map[int64]map[string]struct{}
	followers map[int64]map[string]struct{}
}

// New returns the chat service. Register it with the XMPP server as the
// component for Host().
func New(store *Store, router Router, archive *mam.Store, users *roster.Store, opts Options) *Service {
	if opts.HistoryOnJoin == 0 {
		opts.HistoryOnJoin = 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Service{
		store: store, router: router, archive: archive, users: users, opts: opts,
		host: "conference." + opts.Domain, log: opts.Logger.With("component", "muc"),
		node:  newNodeToken(),
		rooms: make(map[int64]*room), watching: make(map[int64]bool), synced: make(map[int64]bool),
		follows: make(map[int64]map[string]struct{}), followers: make(map[int64]map[string]struct{}),
		dir:   mam.NewDirectory(store.DB(), opts.Domain, "conference."+opts.Domain),
		cache: userCache{users: users, m: make(map[int64]cachedUser)},
	}
}

// Register plugs the service into the XMPP server: the component at
// Host(), and the bookmark IQ handlers on the users' own JIDs (XEP-0402
// PEP node, XEP-0048 private storage).
func (s *Service) Register(srv *xmppcore.Server) {
	srv.RegisterComponent(s.host, s)
	s.changes = srv
	s.notifier = srv
	srv.SetChatChanges(s)
	srv.OnUserChanged(s.cache.forget)
	srv.HandleIQ(NSPubSub, s.iqHandler(s.PubSub))
	srv.HandleIQ(NSPrivate, s.iqHandler(s.Private))
	// XEP-0402 §3.3: the account's PEP service keeps storage:bookmarks
	// (private XML storage and PEP, XEP-0048/0223) and urn:xmpp:bookmarks:1
	// in sync — both are views of the same bookmarks here.
	srv.AddAccountFeature(NSBookmarks + "#compat")
	srv.AddAccountFeature(NSBookmarks + "#compat-pep")
	srv.AddAccountFeature(NSPubSub + "#config-node-max")
	srv.AddAccountFeature(NSPubSub + "#publish-options")
}

// iqHandler adapts a bookmarks handler to the server's IQ dispatch.
func (s *Service) iqHandler(h func(ctx context.Context, user jid.JID, iq *xmppcore.Element) (*xmppcore.Element, error)) xmppcore.IQHandler {
	return func(ctx context.Context, sess *xmppcore.Session, iq *xmppcore.Element) (*xmppcore.Element, error) {
		res, err := h(ctx, sess.JID(), iq)
		var be *bookmarkError
		if errors.As(err, &be) {
			return nil, &xmppcore.StanzaError{Type: be.Type, Condition: be.Condition, Text: be.Text}
		}
		if err != nil {
			s.log.Error("bookmarks", "err", err)
			return nil, xmppcore.ErrInternal()
		}
		return res, nil
	}
}

// Store returns the chat store (for reads).
func (s *Service) Store() *Store { return s.store }

// Host is the component's domain, conference.<domain>.
func (s *Service) Host() string { return s.host }

// HideHistoryDefault is the server-wide default for hide_history.
func (s *Service) HideHistoryDefault() bool { return s.opts.HideHistory }

// RoomJID is the chat's room address.
func (s *Service) RoomJID(c *Chat) string { return c.Room + "@" + s.host }

// ChatByJID returns the chat whose room address is j (bare), ErrNotFound
// for an address outside the service.
func (s *Service) ChatByJID(ctx context.Context, j jid.JID) (*Chat, error) {
	if j.Domainpart() != s.host || j.Localpart() == "" {
		return nil, ErrNotFound
	}
	return s.store.ByRoom(ctx, j.Localpart())
}

// ChatsOf returns the chats userID is a member of.
func (s *Service) ChatsOf(ctx context.Context, userID int64) ([]Chat, error) {
	return s.store.ChatsOf(ctx, userID)
}

// Get returns a chat the viewer may see (viewer 0: any chat). A closed
// chat of which viewer is not a member is ErrNotFound to them.
func (s *Service) Get(ctx context.Context, viewer, chatID int64) (*Chat, error) {
	c, err := s.store.Get(ctx, chatID)
	if err != nil {
		return nil, err
	}
	if !canSee(c, viewer) {
		return nil, ErrNotFound
	}
	return c, nil
}

// FindChats lists the chats viewer may find whose title contains title
// (any case): every open chat and the closed ones viewer is a member of
// (viewer 0: all chats), newest first, at most limit (≤ MaxFound).
func (s *Service) FindChats(ctx context.Context, viewer int64, title string, limit int) ([]Chat, error) {
	return s.store.FindByTitle(ctx, title, viewer, limit)
}

// Create makes a chat. actor 0 is the integration; otherwise the actor
// becomes the owner whatever nc says.
func (s *Service) Create(ctx context.Context, actor int64, nc NewChat) (*Chat, error) {
	if actor != 0 {
		nc.OwnerID = actor
	}
	c, err := s.store.Create(ctx, nc)
	if err != nil {
		return nil, err
	}
	users := make([]int64, len(c.Members))
	for i, m := range c.Members {
		users[i] = m.UserID
		s.memberChanged(ctx, m.UserID, c, true)
	}
	s.emit(ctx, c, EventCreated, users, actor)
	if _, err := s.postCreated(ctx, c, actor); err != nil {
		return c, err
	}
	return c, nil
}

// AddMembers adds users to the chat on behalf of actor (0: the
// integration). hideHistory nil takes the server default. Unless
// skipMessage, the chat gets a system message naming who joined. It
// returns the users actually added (existing members are skipped).
func (s *Service) AddMembers(ctx context.Context, actor, chatID int64, users []int64, hideHistory *bool, skipMessage bool) ([]int64, error) {
	return s.addMembers(ctx, actor, chatID, users, hideHistory, skipMessage, "")
}

// Join makes the user a member of an open chat by themselves, with the
// chat's password when it has one (ErrPasswordRequired otherwise): the
// rule of a XEP-0045 password-protected room, for every door.
func (s *Service) Join(ctx context.Context, userID, chatID int64, password string) ([]int64, error) {
	return s.addMembers(ctx, userID, chatID, []int64{userID}, nil, false, password)
}

func (s *Service) addMembers(ctx context.Context, actor, chatID int64, users []int64, hideHistory *bool, skipMessage bool, password string) ([]int64, error) {
	c, err := s.store.Get(ctx, chatID)
	if err != nil {
		return nil, err
	}
	if err := canAdd(c, actor, users, password); err != nil {
		return nil, err
	}
	if err := s.checkOutcasts(ctx, c, actor, users); err != nil {
		return nil, err
	}
	hide := s.opts.HideHistory
	if hideHistory != nil {
		hide = *hideHistory
	}
	added, err := s.store.AddMembers(ctx, chatID, users, hide)
	if err != nil || len(added) == 0 {
		return added, err
	}
	s.membersAdded(ctx, c, added, actor)
	if !skipMessage {
		if _, err := s.postAdded(ctx, chatID, actor, added); err != nil {
			return added, err
		}
	}
	return added, nil
}

// membersAdded follows up added members at every door: their bookmarks
// and following sessions, the room's moderators (affiliation notices) and
// the followers (a chat event).
func (s *Service) membersAdded(ctx context.Context, c *Chat, added []int64, actor int64) {
	nc, err := s.store.Get(ctx, c.ID)
	if err != nil {
		// The members are added; only the notices about it are lost.
		s.log.Warn("chat after adding members", "chat", c.ID, "err", err)
		nc = nil
	}
	for _, u := range added {
		// Who reads the room becomes a member: their presence says so
		// first (with voice, in a moderated room), then their bookmark
		// comes.
		if nc != nil {
			if nc.Moderated {
				s.giveVoice(nc.ID, u)
			}
			s.affiliationChanged(ctx, nc, u, actor)
		}
		s.memberChanged(ctx, u, c, true)
	}
	if nc != nil {
		s.emit(ctx, nc, EventMembersAdded, added, actor)
	}
}

// joinByPost makes author a member of an open chat by their first
// message (canPost; password is what they gave to enter the room, "" at
// doors without one). It reports whether they joined.
func (s *Service) joinByPost(ctx context.Context, c *Chat, author int64, password string) (bool, error) {
	join, err := canPost(c, author, password)
	if err != nil || !join {
		return false, err
	}
	if err := s.checkOutcasts(ctx, c, author, []int64{author}); err != nil {
		return false, err
	}
	added, err := s.store.AddMembers(ctx, c.ID, []int64{author}, s.opts.HideHistory)
	if err != nil {
		return false, err
	}
	if len(added) > 0 {
		s.membersAdded(ctx, c, added, author)
	}
	return true, nil
}

// RemoveMember removes userID from the chat on behalf of actor (the owner,
// the integration, or the user leaving). Their joined sessions leave the
// room, and the chat gets a system message.
func (s *Service) RemoveMember(ctx context.Context, actor, chatID, userID int64) error {
	if err := s.removeMember(ctx, actor, chatID, userID); err != nil {
		return err
	}
	_, err := s.postRemoved(ctx, chatID, actor, userID)
	return err
}

// removeMember is RemoveMember without the system message.
func (s *Service) removeMember(ctx context.Context, actor, chatID, userID int64) error {
	c, err := s.store.Get(ctx, chatID)
	if err != nil {
		return err
	}
	if err := canRemove(c, actor, userID); err != nil {
		return err
	}
	if err := s.store.RemoveMember(ctx, chatID, userID); err != nil {
		return err
	}
	// In the room, the 321 presence says it; else the owner gets the
	// affiliation message (XEP-0045 §9.4), not both.
	inRoom := false
	if r := s.room(c.ID, false); r != nil {
		inRoom = r.nickOf(userID) != ""
	}
	s.kick(ctx, c, userID, actor)
	s.memberChanged(ctx, userID, c, false)
	if t, err := s.cache.byID(ctx, userID); err == nil && !inRoom {
		// A ban announced itself (outcast, 301).
		if banned, _ := s.store.IsOutcast(ctx, chatID, userID); !banned {
			s.announceAffiliation(ctx, c, t, "none")
		}
	}
	nc, err := s.store.Get(ctx, chatID)
	if err != nil {
		// The member is gone; only the notices about it are lost.
		s.log.Warn("chat after removing a member", "chat", chatID, "err", err)
		return nil
	}
	if nc.OwnerID != c.OwnerID {
		// The owner left: the longest-standing member owns the chat now.
		later(ctx, func() { s.ownerChanged(ctx, nc, c.OwnerID) })
	}
	s.emit(ctx, nc, EventMemberRemoved, []int64{userID}, actor)
	return nil
}

// Update changes the chat on behalf of actor (the owner or the
// integration; see canEdit) and tells every door: the members' bookmarks
// when the title changed, the occupants a configuration change (104), the
// new subject when the description (the room's topic) changed, the owner's
// new affiliation, and the followers a chat event.
func (s *Service) Update(ctx context.Context, actor, chatID int64, u Update) (*Chat, error) {
	c, err := s.store.Get(ctx, chatID)
	if err != nil {
		return nil, err
	}
	if err := canEdit(c, actor); err != nil {
		return nil, err
	}
	nc, err := s.store.Update(ctx, chatID, u)
	if err != nil {
		return nil, err
	}
	s.configChanged(ctx, c, nc, actor, u.Avatar != nil)
	if err := s.postEdited(ctx, c, nc, actor, u.Avatar != nil); err != nil {
		return nc, err
	}
	return nc, nil
}

// PostMessage posts body to the chat: from a member (or, in an open chat,
// anyone active, who then becomes a member), or as a system message
// (system true, fromUserID 0 or the user the event is about). The
// message is archived before it is fanned out to joined occupants; the
// archive id is returned. "/getChatId" from a user is answered to that
// user alone, not stored, and returns id 0.
func (s *Service) PostMessage(ctx context.Context, chatID, fromUserID int64, body string, system bool) (int64, error) {
	return s.PostMessageOrigin(ctx, chatID, fromUserID, body, "", system)
}

// PostMessageOrigin is PostMessage with the client's own message id
// (XEP-0359 origin-id), kept in the archive and echoed in the stanza so
// the sender recognizes its message (the bridge uses it).
func (s *Service) PostMessageOrigin(ctx context.Context, chatID, fromUserID int64, body, originID string, system bool) (int64, error) {
	return s.postMessage(ctx, chatID, fromUserID, jid.JID{}, body, originID, system, 0, "")
}

// PostRich is PostMessage (replyTo 0) or PostReply with rich content:
// BB-coded text, an attachment, a keyboard (xmppcore.RichMessage; an
// invalid one is xmppcore.ErrRich). Plain text is posted as it is.
func (s *Service) PostRich(ctx context.Context, chatID, fromUserID int64, c *rich.Content, system bool, replyTo int64) (int64, error) {
	body, el, err := xmppcore.RichMessage(c)
	if err != nil {
		return 0, err
	}
	extra := ""
	if el != nil {
		extra = el.String()
	}
	return s.postMessage(ctx, chatID, fromUserID, jid.JID{}, body, "", system, replyTo, extra)
}

// PostReply is PostMessageOrigin for a message answering message replyTo
// of the chat (an archive id; XEP-0461): refused (InvalidError on
// reply_to) when the author may not see that message.
func (s *Service) PostReply(ctx context.Context, chatID, fromUserID int64, body, originID string, replyTo int64) (int64, error) {
	return s.postMessage(ctx, chatID, fromUserID, jid.JID{}, body, originID, false, replyTo, "")
}

// PostFromSession is PostReply for a user's message sent through one
// session (full, a full JID of the user; replyTo 0: not a reply): a
// command such as "/getChatId" is answered to that session alone, as the
// room answers a Jabber client.
func (s *Service) PostFromSession(ctx context.Context, chatID, fromUserID int64, full, body, originID string, replyTo int64) (int64, error) {
	session, err := jid.Parse(full)
	if err != nil {
		return 0, fmt.Errorf("muc: post from session %q: %w", full, err)
	}
	return s.postMessage(ctx, chatID, fromUserID, session, body, originID, false, replyTo, "")
}

// postMessage posts body; extra is payload XML the door adds (a rich
// element), checked again by post.
func (s *Service) postMessage(ctx context.Context, chatID, fromUserID int64, session jid.JID, body, originID string, system bool, replyTo int64, extra string) (int64, error) {
	if len(originID) > 128 {
		return 0, invalid("origin_id", "origin_id_too_long", "origin id must be at most 128 bytes")
	}
	if strings.TrimSpace(body) == "" {
		return 0, invalid("message", "empty_message", "message must not be empty")
	}
	if len(body) > MaxBody {
		return 0, invalid("message", "message_too_long", "message must be at most %d bytes", MaxBody)
	}
	c, err := s.store.forPost(ctx, chatID, fromUserID)
	if err != nil {
		return 0, err
	}
	if !system || fromUserID != 0 {
		if fromUserID == 0 {
			return 0, invalid("from_user_id", "missing_user", "from_user_id is required for a message that is not a system message")
		}
		if err := s.checkActive(ctx, fromUserID); err != nil {
			return 0, err
		}
	}
	if system && fromUserID != 0 && !c.IsMember(fromUserID) {
		// A system message on behalf of a user (a bot's token) goes only
		// where that user is a member; the integration (0) posts anywhere.
		return 0, fmt.Errorf("%w: only members may post system messages to a chat", ErrForbidden)
	}
	if !system {
		if _, err := canPost(c, fromUserID, ""); err != nil {
			return 0, err
		}
		if strings.TrimSpace(body) == GetChatID {
			s.answerGetChatID(ctx, c, fromUserID, session)
			return 0, nil
		}
		if _, err := s.joinByPost(ctx, c, fromUserID, ""); err != nil {
			return 0, err
		}
	}
	nick := ""
	if !system {
		nick = s.nickOf(ctx, c.ID, fromUserID)
	}
	payload := ""
	if replyTo != 0 {
		if payload, err = s.replyPayload(ctx, c, fromUserID, replyTo); err != nil {
			return 0, err
		}
	}
	payload += extra
	return s.post(ctx, c, fromUserID, nick, originID, body, payload, system, replyTo)
}

func (s *Service) checkActive(ctx context.Context, userID int64) error {
	u, err := s.cache.byID(ctx, userID)
	if errors.Is(err, roster.ErrNotFound) || err == nil && !u.Active {
		return &UnknownUserError{Field: "from_user_id", UserID: userID}
	}
	if err != nil {
		return fmt.Errorf("muc: user %d: %w", userID, err)
	}
	return nil
}

// post archives a message and fans it out to the room's occupants.
// originID and payload come from an XMPP client; nick is the author's
// room nick ("" for system messages, which come from the room itself).
func (s *Service) post(ctx context.Context, c *Chat, fromUserID int64, nick, originID, body, payload string, system bool, replyTo int64) (int64, error) {
	kind := "groupchat"
	if system {
		kind = "system"
	} else if fromUserID != 0 {
		if err := s.allowPost(c.ID, fromUserID); err != nil {
			return 0, err
		}
	}
	body, payload, err := xmppcore.NormalizeRichPayload(body, payload)
	if err != nil {
		return 0, fmt.Errorf("muc: message to chat %d: %w", c.ID, err)
	}
	payload, files, err := xmppcore.AttachFilesPayload(ctx, s.opts.Files, body, payload)
	if err != nil {
		return 0, fmt.Errorf("muc: files of a message to chat %d: %w", c.ID, err)
	}
	var mentioned []int64
	if !system {
		extra, users, err := s.mentions(ctx, c, fromUserID, body, payload)
		if err != nil {
			return 0, err
		}
		payload, mentioned = payload+extra, users
	}
	m := &mam.Message{Kind: kind, FromID: fromUserID, ChatID: c.ID, FromResource: nick, OriginID: originID, Body: body, Payload: payload, Files: files, ReplyTo: replyTo}
	m.Lang = langOf(ctx)
	// Fanned out as soon as the archive has numbered it (on SQLite before
	// the commit: occupants need not wait for the disk); the author hears
	// of it (the id, a REST answer) once it is stored.
	early := false
	if _, err := s.archive.AppendThen(ctx, m, func(committed bool) {
		early = !committed
		s.fanout(ctx, c, s.groupchatElement(c, m, nick, system))
	}); err != nil {
		if early {
			s.log.Error("a chat message fanned out before its commit was not stored", "chat", c.ID, "id", m.ID, "err", err)
		}
		return 0, fmt.Errorf("muc: archive message to chat %d: %w", c.ID, err)
	}
	s.notifyMentions(ctx, c, fromUserID, m.ID, body, mentioned)
	return m.ID, nil
}

func (s *Service) displayName(ctx context.Context, userID int64) string {
	u, err := s.cache.byID(ctx, userID)
	if err != nil {
		return "user " + strconv.FormatInt(userID, 10)
	}
	return u.Name
}

// nickOf is the author's nick in the room: their occupant nick when joined,
// else their login (as the archive shows authors over MAM).
func (s *Service) nickOf(ctx context.Context, chatID, userID int64) string {
	if r := s.room(chatID, false); r != nil {
		if n := r.nickOf(userID); n != "" {
			return n
		}
	}
	return s.login(ctx, userID)
}

func (s *Service) login(ctx context.Context, userID int64) string {
	u, err := s.cache.byID(ctx, userID)
	if err != nil {
		return "user" + strconv.FormatInt(userID, 10)
	}
	return u.Login
}
