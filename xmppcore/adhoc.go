package xmppcore

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"mellium.im/xmpp/jid"
)

// Ad-hoc commands (XEP-0050) for the server's admins (Options.Admins),
// with the service administration commands of XEP-0133 an operator needs:
// announce to the online users, count and list them, end a user's
// sessions. Each command is a form the admin fills in and submits; the
// server keeps no state between the two steps (the submitted form holds
// everything), so a sessionid is only echoed.
const (
	NSCommands = "http://jabber.org/protocol/commands"
	NSData     = "jabber:x:data"
	NSAdmin    = "http://jabber.org/protocol/admin" // XEP-0133 FORM_TYPE

	CmdAnnounce        = NSAdmin + "#announce"
	CmdOnlineUsersNum  = NSAdmin + "#get-online-users-num"
	CmdOnlineUsersList = NSAdmin + "#get-online-users-list"
	CmdEndUserSession  = NSAdmin + "#end-user-session"
)

// MaxAnnouncement bounds an announcement's text in bytes.
const MaxAnnouncement = 16 << 10

// MaxEndSessions bounds how many accounts one end-user-session names.
const MaxEndSessions = 100

// adminCommand is one XEP-0133 command: its form, and what a submitted
// form does (the payload of the completed <command/>: a note or a result
// form).
type adminCommand struct {
	node, name string
	form       func() *Element
	run        func(s *Server, ctx context.Context, sess *Session, vals map[string][]string) (*Element, error)
}

var adminCommands = []adminCommand{
	{CmdAnnounce, "Send announcement to online users", announceForm, (*Server).cmdAnnounce},
	{CmdOnlineUsersNum, "Get number of online users", nil, (*Server).cmdOnlineUsersNum},
	{CmdOnlineUsersList, "Get list of online users", onlineUsersForm, (*Server).cmdOnlineUsersList},
	{CmdEndUserSession, "End user session", endSessionForm, (*Server).cmdEndUserSession},
}

func findCommand(node string) *adminCommand {
	for i := range adminCommands {
		if adminCommands[i].node == node {
			return &adminCommands[i]
		}
	}
	return nil
}

// isAdmin reports whether the session's account is a server admin.
func (s *Server) isAdmin(sess *Session) bool {
	for _, a := range s.opts.Admins {
		if strings.EqualFold(a, sess.login) {
			return true
		}
	}
	return false
}

// commandsDisco answers disco#info and disco#items on the commands node
// and on each command's node (XEP-0050 §2.2, §2.3); ok false when node is
// none of them. Only admins see the commands.
func (s *Server) commandsDisco(sess *Session, node string, items bool) (res *Element, ok bool) {
	if node == NSCommands {
		if !items {
			return NewElement(NSDiscoInfo, "query", "node", node).AddChild(
				NewElement(NSDiscoInfo, "identity", "category", "automation", "type", "command-list", "name", "Commands")), true
		}
		q := NewElement(NSDiscoItems, "query", "node", node)
		if s.isAdmin(sess) {
			for _, c := range adminCommands {
				q.AddChild(NewElement(NSDiscoItems, "item", "jid", s.domain, "node", c.node, "name", c.name))
			}
		}
		return q, true
	}
	c := findCommand(node)
	if c == nil || !s.isAdmin(sess) {
		return nil, false
	}
	if items {
		return NewElement(NSDiscoItems, "query", "node", node), true
	}
	return NewElement(NSDiscoInfo, "query", "node", node).AddChild(
		NewElement(NSDiscoInfo, "identity", "category", "automation", "type", "command-node", "name", c.name),
		NewElement(NSDiscoInfo, "feature", "var", NSCommands),
		NewElement(NSDiscoInfo, "feature", "var", NSData)), true
}

// iqCommand executes an ad-hoc command addressed to the server.
func (s *Server) iqCommand(ctx context.Context, sess *Session, iq *Element) (*Element, error) {
	if iq.AttrValue("type") != "set" {
		return nil, ErrBadRequest("commands are executed with an iq set")
	}
	if to := iq.AttrValue("to"); to != "" && to != s.domain {
		return nil, ErrItemNotFound()
	}
	cmd := iq.Children[0]
	c := findCommand(cmd.AttrValue("node"))
	if c == nil {
		return nil, ErrItemNotFound()
	}
	if !s.isAdmin(sess) {
		return nil, ErrForbidden("only the server's admins run this command")
	}
	sid := cmd.AttrValue("sessionid")
	if sid == "" {
		sid = randomID(12)
	}
	answer := func(status string, children ...*Element) *Element {
		return NewElement(NSCommands, "command", "node", c.node, "sessionid", sid, "status", status).AddChild(children...)
	}
	action := cmd.AttrValue("action")
	if action == "cancel" {
		return answer("canceled"), nil
	}
	x := cmd.Child(NSData, "x")
	if x == nil && c.form != nil {
		if action != "" && action != "execute" {
			return nil, ErrBadRequest("submit the command's form")
		}
		return answer("executing",
			NewElement(NSCommands, "actions", "execute", "complete").AddChild(NewElement(NSCommands, "complete")),
			c.form()), nil
	}
	vals := map[string][]string{}
	if x != nil {
		if t := x.AttrValue("type"); t != "submit" {
			return nil, ErrBadRequest("the form must be of type submit")
		}
		for _, f := range x.Children {
			if f.Name.Local != "field" {
				continue
			}
			var vs []string
			for _, v := range f.Children {
				if v.Name.Local == "value" {
					vs = append(vs, v.Text)
				}
			}
			vals[f.AttrValue("var")] = vs
		}
	}
	out, err := c.run(s, ctx, sess, vals)
	if err != nil {
		return nil, err
	}
	return answer("completed", out), nil
}

func first(vals map[string][]string, name string) string {
	if v := vals[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func note(typ, text string) *Element {
	n := NewElement(NSCommands, "note", "type", typ)
	n.Text = text
	return n
}

func adminForm(typ, title string, fields ...*Element) *Element {
	x := NewElement(NSData, "x", "type", typ)
	x.AddText(NSData, "title", title)
	ft := NewElement(NSData, "field", "var", "FORM_TYPE", "type", "hidden")
	ft.AddText(NSData, "value", NSAdmin)
	x.AddChild(ft)
	return x.AddChild(fields...)
}

func formField(typ, name, label string, required bool, values ...string) *Element {
	f := NewElement(NSData, "field", "type", typ, "var", name, "label", label)
	if required {
		f.AddChild(NewElement(NSData, "required"))
	}
	for _, v := range values {
		f.AddText(NSData, "value", v)
	}
	return f
}

func announceForm() *Element {
	return adminForm("form", "Send announcement to online users",
		formField("text-single", "subject", "Subject", false),
		formField("text-multi", "announcement", "Announcement", true))
}

func onlineUsersForm() *Element {
	max := formField("list-single", "max_items", "Maximum number of users", false, "100")
	for _, o := range []string{"25", "50", "75", "100", "150", "200", "none"} {
		opt := NewElement(NSData, "option", "label", o)
		opt.AddText(NSData, "value", o)
		max.AddChild(opt)
	}
	return adminForm("form", "Get list of online users", max)
}

func endSessionForm() *Element {
	return adminForm("form", "End user session",
		formField("jid-multi", "accountjids", "The users whose sessions end", true))
}

// cmdAnnounce sends a headline message from the server to every session,
// on every node (the other nodes get it on the subject for all nodes).
func (s *Server) cmdAnnounce(ctx context.Context, sess *Session, vals map[string][]string) (*Element, error) {
	text := strings.Join(vals["announcement"], "\n")
	subject := first(vals, "subject")
	if strings.TrimSpace(text) == "" {
		return nil, ErrNotAcceptable("the announcement is empty")
	}
	if len(text)+len(subject) > MaxAnnouncement {
		return nil, ErrNotAcceptable(fmt.Sprintf("an announcement is at most %d bytes", MaxAnnouncement))
	}
	msg := NewElement(NSClient, "message", "type", "headline", "from", s.domain, "id", "announce-"+randomID(10))
	if subject != "" {
		msg.AddText(NSClient, "subject", subject)
	}
	msg.AddText(NSClient, "body", text)
	n := s.announceLocal(msg)
	remote := 0
	if s.cl != nil {
		for _, u := range s.cl.Users() {
			remote += len(s.cl.Sessions(u))
		}
		if remote > 0 {
			a := NewElement(nsCluster, "announce")
			a.Children = append(a.Children, msg)
			s.cl.Broadcast(a.String())
		}
	}
	sess.logger().Info("announcement sent", "sessions", n, "other_nodes_sessions", remote)
	if remote > 0 {
		return note("info", fmt.Sprintf("Sent to %d sessions (%d on other nodes).", n+remote, remote)), nil
	}
	return note("info", fmt.Sprintf("Sent to %d sessions.", n)), nil
}

// announceLocal delivers an announcement to every session on this node
// and returns how many took it.
func (s *Server) announceLocal(msg *Element) int {
	n := 0
	for _, to := range s.router.all() {
		c := msg.ShallowCopy()
		c.SetAttr("to", to.jidStr)
		if to.deliver(c) {
			n++
		}
	}
	return n
}

// onlineUsers returns the bare JIDs of the users online on any node,
// sorted (the other nodes' sessions from the cluster's mirror).
func (s *Server) onlineUsers(ctx context.Context) []string {
	seen := map[string]bool{}
	var out []string
	for _, e := range s.router.entries() {
		if ss := e.sessions; len(ss) > 0 && !seen[ss[0].bareStr] {
			seen[ss[0].bareStr] = true
			out = append(out, ss[0].bareStr)
		}
	}
	if s.cl != nil {
		for _, id := range s.cl.Users() {
			acc, err := s.users.byID(ctx, id)
			if err != nil {
				continue
			}
			if b := s.bareJID(acc.Login); !seen[b] {
				seen[b] = true
				out = append(out, b)
			}
		}
	}
	sort.Strings(out)
	return out
}

func (s *Server) cmdOnlineUsersNum(ctx context.Context, sess *Session, vals map[string][]string) (*Element, error) {
	return adminForm("result", "Number of online users",
		formField("text-single", "onlineusersnum", "The number of online users", false, strconv.Itoa(len(s.onlineUsers(ctx))))), nil
}

func (s *Server) cmdOnlineUsersList(ctx context.Context, sess *Session, vals map[string][]string) (*Element, error) {
	users := s.onlineUsers(ctx)
	if m := first(vals, "max_items"); m != "" && m != "none" {
		n, err := strconv.Atoi(m)
		if err != nil || n < 1 {
			return nil, ErrBadRequest("max_items is a positive number or none")
		}
		if n < len(users) {
			users = users[:n]
		}
	}
	return adminForm("result", "Online users",
		formField("jid-multi", "onlineuserjids", "The list of all online users", false, users...)), nil
}

// cmdEndUserSession ends every session of the named accounts, on every
// node, as `vestnik user logout` does (the core's Logout). The JIDs are
// checked first: one that names no account changes nothing.
func (s *Server) cmdEndUserSession(ctx context.Context, sess *Session, vals map[string][]string) (*Element, error) {
	jids := vals["accountjids"]
	if len(jids) == 0 {
		return nil, ErrBadRequest("name at least one account")
	}
	if len(jids) > MaxEndSessions {
		return nil, ErrNotAcceptable(fmt.Sprintf("at most %d accounts at once", MaxEndSessions))
	}
	var logins []string
	for _, v := range jids {
		j, err := jid.Parse(strings.TrimSpace(v))
		if err != nil || j.Localpart() == "" || j.Domainpart() != s.domain {
			return nil, ErrNotAcceptable(fmt.Sprintf("%q is not an account of %s", v, s.domain))
		}
		if _, err := s.users.byLogin(ctx, j.Localpart()); err != nil {
			if errors.Is(err, ErrNotFound) {
				return nil, &StanzaError{Type: ErrTypeCancel, Condition: "item-not-found", Text: fmt.Sprintf("no account %s", j.Bare())}
			}
			return nil, err
		}
		logins = append(logins, j.Localpart())
	}
	for _, l := range logins {
		if err := s.dir.Logout(ctx, l); err != nil {
			return nil, fmt.Errorf("end sessions of %q: %w", l, err)
		}
		// This node's sessions end now; the others' when their nodes
		// see the logout event.
		if acc, err := s.users.byLogin(ctx, l); err == nil {
			for _, other := range s.router.sessions(acc.ID) {
				other.kill(closeRevoked)
			}
		}
	}
	sess.logger().Info("sessions ended by an admin", "accounts", strings.Join(logins, ","))
	return note("info", fmt.Sprintf("Every session of %d account(s) ended.", len(logins))), nil
}
