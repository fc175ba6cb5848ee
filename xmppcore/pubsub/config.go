package pubsub

import (
	"strconv"

	"vestnik/xmppcore"
	"vestnik/xmppcore/stanza"
)

// Data form types of node configuration and publish options.
const (
	FormNodeConfig     = "http://jabber.org/protocol/pubsub#node_config"
	FormPublishOptions = "http://jabber.org/protocol/pubsub#publish-options"
	NSData             = stanza.NSData
	nsValidate         = "http://jabber.org/protocol/xdata-validate"
)

// MaxItemsLimit bounds pubsub#max_items; "max" means this many.
const MaxItemsLimit = 256

// Config is a node configuration (XEP-0060 §16.4.4 pubsub#node_config).
type Config struct {
	Title            string `json:"title,omitempty"`
	Description      string `json:"description,omitempty"`
	Type             string `json:"type,omitempty"`
	MaxItems         int    `json:"max_items"` // MaxItemsLimit for "max"
	PersistItems     bool   `json:"persist_items"`
	AccessModel      string `json:"access_model"`
	PublishModel     string `json:"publish_model"`
	SendLast         string `json:"send_last_published_item"`
	Notify           bool   `json:"deliver_notifications"`
	Payloads         bool   `json:"deliver_payloads"`
	NotificationType string `json:"notification_type"`
	NotifyDelete     bool   `json:"notify_delete"`
	NotifyRetract    bool   `json:"notify_retract"`
	ItemReply        string `json:"itemreply"`
}

// DefaultConfig is the configuration of a new node on the pubsub service.
func DefaultConfig() Config {
	return Config{MaxItems: 20, PersistItems: true, AccessModel: "open", PublishModel: "publishers", SendLast: "never",
		Notify: true, Payloads: true, NotificationType: "headline", NotifyDelete: true, NotifyRetract: true, ItemReply: "none"}
}

// DefaultPEPConfig is the configuration of a new PEP node (XEP-0163):
// one item, visible to those who see the owner's presence, sent to them
// when they subscribe or come online.
func DefaultPEPConfig() Config {
	c := DefaultConfig()
	c.MaxItems, c.AccessModel, c.SendLast = 1, "presence", "on_sub_and_presence"
	return c
}

// itemLimit is how many items the node keeps (0 when not persistent,
// but then the last one is still kept for send_last_published_item).
func (c Config) itemLimit() int {
	if !c.PersistItems || c.MaxItems < 1 {
		return 1
	}
	return c.MaxItems
}

var (
	accessModels  = []string{"authorize", "open", "presence", "roster", "whitelist"}
	publishModels = []string{"publishers", "subscribers", "open"}
	sendLasts     = []string{"never", "on_sub", "on_sub_and_presence"}
	notifTypes    = []string{"normal", "headline"}
	itemReplies   = []string{"owner", "publisher", "none"}
)

func boolValue(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func field(typ, v, label string, values ...string) *xmppcore.Element {
	f := xmppcore.NewElement(NSData, "field", "var", v, "label", label, "type", typ)
	if label == "" {
		f = xmppcore.NewElement(NSData, "field", "type", typ, "var", v)
	}
	for _, val := range values {
		f.AddText(NSData, "value", val)
	}
	return f
}

func listField(v, label string, options []string, labels []string, value string) *xmppcore.Element {
	f := field("list-single", v, label)
	for i, o := range options {
		l := o
		if labels != nil {
			l = labels[i]
		}
		f.AddChild(withValue(xmppcore.NewElement(NSData, "option", "label", l), o))
	}
	f.AddText(NSData, "value", value)
	return f
}

// Form renders the configuration as a data form (type "form"), in the
// field order clients and Prosody use.
func (c Config) Form() *xmppcore.Element {
	x := xmppcore.NewElement(NSData, "x", "type", "form")
	x.AddChild(withValue(xmppcore.NewElement(NSData, "field", "var", "FORM_TYPE", "type", "hidden"), FormNodeConfig))
	opt := func(v string) []string {
		if v == "" {
			return nil
		}
		return []string{v}
	}
	x.AddChild(field("text-single", "pubsub#title", "Title", opt(c.Title)...))
	x.AddChild(field("text-single", "pubsub#description", "Description", opt(c.Description)...))
	x.AddChild(field("text-single", "pubsub#type", "The type of node data, usually specified by the namespace of the payload (if any)", opt(c.Type)...))
	mi := field("text-single", "pubsub#max_items", "Max # of items to persist")
	mi.AddChild(xmppcore.NewElement(nsValidate, "validate", "datatype", "pubsub:integer-or-max").
		AddChild(xmppcore.NewElement(nsValidate, "range", "min", "1", "max", strconv.Itoa(MaxItemsLimit))))
	if c.MaxItems >= MaxItemsLimit {
		mi.AddText(NSData, "value", "max")
	} else {
		mi.AddText(NSData, "value", strconv.Itoa(c.MaxItems))
	}
	x.AddChild(mi)
	x.AddChild(field("boolean", "pubsub#persist_items", "Persist items to storage", boolValue(c.PersistItems)))
	x.AddChild(listField("pubsub#access_model", "Specify the subscriber model", accessModels, nil, c.AccessModel))
	x.AddChild(xmppcore.NewElement(NSData, "field", "type", "list-multi", "var", "pubsub#roster_groups_allowed", "label", "Roster groups allowed to subscribe"))
	x.AddChild(listField("pubsub#publish_model", "Specify the publisher model", publishModels, nil, c.PublishModel))
	x.AddChild(listField("pubsub#send_last_published_item", "", sendLasts, nil, c.SendLast))
	x.AddChild(field("boolean", "pubsub#deliver_notifications", "Whether to deliver event notifications", boolValue(c.Notify)))
	x.AddChild(field("boolean", "pubsub#deliver_payloads", "Whether to deliver payloads with event notifications", boolValue(c.Payloads)))
	x.AddChild(listField("pubsub#notification_type", "Specify the delivery style for notifications", notifTypes,
		[]string{"Messages of type normal", "Messages of type headline"}, c.NotificationType))
	x.AddChild(field("boolean", "pubsub#notify_delete", "Whether to notify subscribers when the node is deleted", boolValue(c.NotifyDelete)))
	x.AddChild(field("boolean", "pubsub#notify_retract", "Whether to notify subscribers when items are removed from the node", boolValue(c.NotifyRetract)))
	x.AddChild(listField("pubsub#itemreply", "Specify whose JID to include as the publisher of items", itemReplies,
		[]string{"Include the node owner's JID", "Include the item publisher's JID", "Don't include any JID with items"}, c.ItemReply))
	return x
}

// formValues reads a submitted data form: var → values.
func formValues(x *xmppcore.Element) map[string][]string { return stanza.FormValues(x) }

// formError is a bad field in a submitted form.
type formError struct{ field string }

func (e *formError) Error() string { return "pubsub: bad value for " + e.field }

func parseBool(v string) (bool, bool) {
	switch v {
	case "1", "true":
		return true, true
	case "0", "false":
		return false, true
	}
	return false, false
}

func oneOf(v string, set []string) bool {
	for _, s := range set {
		if s == v {
			return true
		}
	}
	return false
}

// Apply returns c changed by the submitted values (fields not given keep
// their value); unknown fields are ignored.
func (c Config) Apply(vals map[string][]string) (Config, error) {
	get := func(k string) (string, bool) {
		v, ok := vals[k]
		if !ok {
			return "", false
		}
		if len(v) == 0 {
			return "", true
		}
		return v[0], true
	}
	if v, ok := get("pubsub#title"); ok {
		c.Title = v
	}
	if v, ok := get("pubsub#description"); ok {
		c.Description = v
	}
	if v, ok := get("pubsub#type"); ok {
		c.Type = v
	}
	if v, ok := get("pubsub#max_items"); ok && v != "" {
		if v == "max" {
			c.MaxItems = MaxItemsLimit
		} else if n, err := strconv.Atoi(v); err == nil && n >= 1 {
			c.MaxItems = min(n, MaxItemsLimit)
		} else {
			return c, &formError{"max_items"}
		}
	}
	bools := []struct {
		k string
		p *bool
	}{{"pubsub#persist_items", &c.PersistItems}, {"pubsub#deliver_notifications", &c.Notify}, {"pubsub#deliver_payloads", &c.Payloads},
		{"pubsub#notify_delete", &c.NotifyDelete}, {"pubsub#notify_retract", &c.NotifyRetract}}
	for _, b := range bools {
		if v, ok := get(b.k); ok && v != "" {
			x, good := parseBool(v)
			if !good {
				return c, &formError{b.k[len("pubsub#"):]}
			}
			*b.p = x
		}
	}
	lists := []struct {
		k   string
		p   *string
		set []string
	}{{"pubsub#access_model", &c.AccessModel, accessModels}, {"pubsub#publish_model", &c.PublishModel, publishModels},
		{"pubsub#send_last_published_item", &c.SendLast, sendLasts}, {"pubsub#notification_type", &c.NotificationType, notifTypes},
		{"pubsub#itemreply", &c.ItemReply, itemReplies}}
	for _, l := range lists {
		if v, ok := get(l.k); ok && v != "" {
			if !oneOf(v, l.set) {
				return c, &formError{l.k[len("pubsub#"):]}
			}
			*l.p = v
		}
	}
	return c, nil
}

// Matches checks publish-options preconditions (XEP-0060 §7.1.5): every
// given option must equal the node's configuration. It returns the name
// of the first field that does not match, or "".
func (c Config) Matches(vals map[string][]string) string {
	want, err := c.Apply(vals)
	if err != nil {
		return err.(*formError).field
	}
	if want.AccessModel != c.AccessModel {
		return "access_model"
	}
	if want.PublishModel != c.PublishModel {
		return "publish_model"
	}
	if want.PersistItems != c.PersistItems {
		return "persist_items"
	}
	if want.MaxItems != c.MaxItems {
		return "max_items"
	}
	if want.SendLast != c.SendLast {
		return "send_last_published_item"
	}
	if want.Notify != c.Notify || want.Payloads != c.Payloads || want.NotifyDelete != c.NotifyDelete || want.NotifyRetract != c.NotifyRetract {
		return "notifications"
	}
	if want.NotificationType != c.NotificationType || want.ItemReply != c.ItemReply {
		return "notification_type"
	}
	return ""
}

// withValue adds a <value/> to a form element and returns the element.
func withValue(e *xmppcore.Element, v string) *xmppcore.Element {
	e.AddText(NSData, "value", v)
	return e
}
