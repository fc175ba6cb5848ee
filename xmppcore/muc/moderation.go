package muc

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Moderation (XEP-0045 §8, §9): the owner (and server admins, actor 0)
// moderates. A kick (role none, status 307) takes a user's sessions out
// of the room and leaves the membership; a ban (affiliation outcast,
// status 301) removes the member, keeps the reason in chat_outcasts
// (migration 0170) and refuses them until the owner adds them back,
// which lifts it. Revoking voice (role visitor) lasts while the user
// stays in the room: a company chat's members speak, so the next join
// is a participant again.

// MaxReason bounds a kick or ban reason, in bytes.
const MaxReason = 1024

// Outcast is a user banned from a chat.
type Outcast struct {
	UserID    int64  `db:"user_id"`
	Reason    string `db:"reason"`
	ActorID   int64  `db:"actor_id"`
	CreatedAt int64  `db:"created_at"`
}

// Outcasts lists a chat's banned users, oldest ban first.
func (s *Store) Outcasts(ctx context.Context, chatID int64) ([]Outcast, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var out []Outcast
	if err := s.db.SelectContext(ctx, &out, s.db.Rebind(`SELECT user_id, reason, actor_id, created_at FROM chat_outcasts
		WHERE chat_id = ? ORDER BY created_at, user_id`), chatID); err != nil {
		return nil, fmt.Errorf("muc: outcasts of %d: %w", chatID, err)
	}
	return out, nil
}

// IsOutcast reports whether userID is banned from the chat.
func (s *Store) IsOutcast(ctx context.Context, chatID, userID int64) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var n int
	err := s.db.GetContext(ctx, &n, s.db.Rebind(`SELECT 1 FROM chat_outcasts WHERE chat_id = ? AND user_id = ?`), chatID, userID)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("muc: outcast %d in %d: %w", userID, chatID, err)
	}
	return true, nil
}

func (s *Store) addOutcast(ctx context.Context, chatID, userID, actor int64, reason string) error {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	_, err := s.db.ExecContext(ctx, s.db.Rebind(`INSERT INTO chat_outcasts (chat_id, user_id, reason, actor_id, created_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (chat_id, user_id) DO UPDATE SET reason = excluded.reason, actor_id = excluded.actor_id`),
		chatID, userID, reason, actor, time.Now().UnixMicro())
	if err != nil {
		return fmt.Errorf("muc: ban %d from %d: %w", userID, chatID, err)
	}
	return nil
}

func (s *Store) removeOutcasts(ctx context.Context, chatID int64, users []int64) error {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	for _, u := range users {
		if _, err := s.db.ExecContext(ctx, s.db.Rebind(`DELETE FROM chat_outcasts WHERE chat_id = ? AND user_id = ?`), chatID, u); err != nil {
			return fmt.Errorf("muc: unban %d from %d: %w", u, chatID, err)
		}
	}
	return nil
}

// checkOutcasts is the ban rule of adding members: the owner (or the
// integration) adding a banned user lifts the ban; anyone else —
// including the user joining an open chat — is refused.
func (s *Service) checkOutcasts(ctx context.Context, c *Chat, actor int64, users []int64) error {
	// A chat's outcasts are few: one query, not one per user added.
	outs, err := s.store.Outcasts(ctx, c.ID)
	if err != nil || len(outs) == 0 {
		return err
	}
	isOut := make(map[int64]bool, len(outs))
	for _, o := range outs {
		isOut[o.UserID] = true
	}
	var banned []int64
	for _, u := range users {
		if isOut[u] {
			banned = append(banned, u)
		}
	}
	if len(banned) == 0 {
		return nil
	}
	if canEdit(c, actor) != nil {
		return fmt.Errorf("%w: banned from this chat", ErrForbidden)
	}
	return s.store.removeOutcasts(ctx, c.ID, banned)
}

// Ban makes userID an outcast of the chat on behalf of actor (the owner,
// or 0): their sessions leave the room with status 301 and the reason,
// they stop being a member, and they cannot join or be added back by
// anyone but the owner.
func (s *Service) Ban(ctx context.Context, actor, chatID, userID int64, reason string) error {
	c, err := s.store.Get(ctx, chatID)
	if err != nil {
		return err
	}
	if err := canEdit(c, actor); err != nil {
		return err
	}
	if userID == c.OwnerID {
		return fmt.Errorf("%w: the owner cannot be banned", ErrForbidden)
	}
	if len(reason) > MaxReason {
		return invalid("reason", "too_long", "a reason is at most %d bytes", MaxReason)
	}
	if err := s.store.addOutcast(ctx, chatID, userID, actor, reason); err != nil {
		return err
	}
	// Not in the room: the owner's occupants are told (XEP-0045 §9.1), as
	// for other affiliations; in the room: the 301 presence tells everyone.
	if t, err := s.users.UserByID(ctx, userID); err == nil {
		s.announceAffiliationWith(ctx, c, t, "outcast", reason, "301")
	}
	s.eject(ctx, c, userID, actor, reason, "301")
	if c.IsMember(userID) {
		return s.removeMember(ctx, actor, chatID, userID)
	}
	return nil
}

// Kick takes the sessions of the occupant with that nick out of the room
// (role none, status 307) on behalf of actor (the owner, or 0); they stay
// a member and may join again.
func (s *Service) Kick(ctx context.Context, actor int64, c *Chat, nick, reason string) error {
	if err := canEdit(c, actor); err != nil {
		return fmt.Errorf("%w: only a moderator may kick", ErrForbidden)
	}
	target := s.occupantByNick(c.ID, nick)
	if target == 0 {
		return ErrNotFound
	}
	if target == c.OwnerID {
		return fmt.Errorf("%w: the owner cannot be kicked", ErrForbidden)
	}
	if len(reason) > MaxReason {
		return invalid("reason", "too_long", "a reason is at most %d bytes", MaxReason)
	}
	s.eject(ctx, c, target, actor, reason, "307")
	return nil
}

// SetVoice grants (participant) or revokes (visitor) the voice of the
// occupant with that nick, on behalf of actor (the owner, or 0); every
// occupant gets the new role. An occupant joined through another node is
// changed there (a <voice/> notice on the chat's subject).
func (s *Service) SetVoice(ctx context.Context, actor int64, c *Chat, nick string, voice bool) error {
	if err := canEdit(c, actor); err != nil {
		return fmt.Errorf("%w: only a moderator may change voice", ErrForbidden)
	}
	r := s.room(c.ID, false)
	if r == nil {
		return ErrNotFound
	}
	target := s.occupantByNick(c.ID, nick)
	if target == 0 {
		return ErrNotFound
	}
	if target == c.OwnerID && !voice {
		return fmt.Errorf("%w: the owner cannot lose voice", ErrForbidden)
	}
	v := "0"
	if voice {
		v = "1"
	}
	// Sessions of one user may share the nick on several nodes: each node
	// changes its own.
	s.shareChat(c.ID, el(nsOccupant, "voice", "from", s.host, "chat", itoa(c.ID), "nick", nick, "voice", v))
	s.setVoiceLocal(ctx, c, nick, voice)
	return nil
}

// setVoiceLocal changes the role of the occupants joined here under nick
// and tells every occupant.
func (s *Service) setVoiceLocal(ctx context.Context, c *Chat, nick string, voice bool) {
	r := s.room(c.ID, false)
	if r == nil {
		return
	}
	var changed []*occupant
	r.mu.Lock()
	for _, o := range r.occupants {
		if o.nick == nick && !(o.userID == c.OwnerID && !voice) {
			o.visitor = !voice
			cp := *o
			changed = append(changed, &cp)
		}
	}
	r.mu.Unlock()
	for _, o := range changed {
		s.broadcastPresence(ctx, c, r, o, "")
	}
}

// giveVoice makes the sessions of userID in the room participants (a
// visitor of a moderated room who became a member).
func (s *Service) giveVoice(chatID, userID int64) {
	r := s.room(chatID, false)
	if r == nil {
		return
	}
	r.mu.Lock()
	for _, o := range r.occupants {
		if o.userID == userID {
			o.visitor = false
		}
	}
	r.mu.Unlock()
}

// occupantByNick returns the user joined under nick, here or through
// another node, 0 if none.
func (s *Service) occupantByNick(chatID int64, nick string) int64 {
	r := s.room(chatID, false)
	if r == nil {
		return 0
	}
	r.mu.RLock()
	for _, o := range r.occupants {
		if o.nick == nick {
			r.mu.RUnlock()
			return o.userID
		}
	}
	r.mu.RUnlock()
	if o := r.remoteByNick(nick); o != nil {
		return o.userID
	}
	return 0
}

// eject removes every session of userID from the room, on every node,
// with a status (307 kicked, 301 banned, 321 no longer a member), the
// reason and the actor; each gets its unavailable presence with 110, the
// others see it go.
func (s *Service) eject(ctx context.Context, c *Chat, userID, actor int64, reason, code string) {
	mod := &modInfo{reason: reason}
	if r := s.room(c.ID, false); r != nil && actor != 0 && actor != userID {
		r.mu.RLock()
		for _, o := range r.occupants {
			if o.userID == actor {
				mod.byNick, mod.byFull = o.nick, o.full
				break
			}
		}
		if mod.byNick == "" {
			for _, o := range r.remote {
				if o.userID == actor {
					mod.byNick, mod.byFull = o.nick, o.full
					break
				}
			}
		}
		r.mu.RUnlock()
	}
	s.shareChat(c.ID, el(nsOccupant, "eject", "from", s.host, "chat", itoa(c.ID), "user", itoa(userID), "code", code,
		"reason", reason, "actor-nick", mod.byNick, "actor-jid", mod.byFull))
	s.ejectLocal(ctx, c, userID, mod, code)
}

// ejectLocal is eject for the sessions joined through this node.
func (s *Service) ejectLocal(ctx context.Context, c *Chat, userID int64, mod *modInfo, code string) {
	r := s.room(c.ID, false)
	if r == nil {
		return
	}
	var gone []*occupant
	r.mu.Lock()
	for full, o := range r.occupants {
		if o.userID == userID {
			gone = append(gone, o)
			delete(r.occupants, full)
		}
	}
	r.mu.Unlock()
	for _, o := range gone {
		s.sendPresence(ctx, c, mod.decorate(s.occupantPresence(c, o, true, "110", code)), s.RoomJID(c)+"/"+o.nick, o.full)
		s.announceLeaveWith(ctx, c, r, o, mod, code)
	}
	s.dropIfEmpty(c.ID, r)
}

// ErrRateLimited: the author posts to the chat faster than
// Options.MessageRate allows.
var ErrRateLimited = errors.New("muc: rate limited")

// Default message rate per author and chat (Options.MessageRate,
// Options.MessageBurst): a person typing never meets it, a script
// flooding a room does.
const (
	DefaultMessageRate  = 2.0 // messages per second, sustained
	DefaultMessageBurst = 20  // messages at once
	maxPostLimiters     = 100000
)

// postLimiters holds a token bucket per (chat, author).
type postLimiters struct {
	mu sync.Mutex // guards m; never held across I/O
	m  map[[2]int64]*rate.Limiter
}

// allowPost spends one message of the author's budget in the chat.
func (s *Service) allowPost(chatID, userID int64) error {
	r, burst := s.opts.MessageRate, s.opts.MessageBurst
	if r < 0 {
		return nil
	}
	if r == 0 {
		r = DefaultMessageRate
	}
	if burst <= 0 {
		burst = DefaultMessageBurst
	}
	pl := &s.limits
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.m == nil || len(pl.m) >= maxPostLimiters {
		pl.m = make(map[[2]int64]*rate.Limiter) // forget all: at worst a fresh burst
	}
	k := [2]int64{chatID, userID}
	l := pl.m[k]
	if l == nil {
		l = rate.NewLimiter(rate.Limit(r), burst)
		pl.m[k] = l
	}
	if !l.Allow() {
		return fmt.Errorf("%w: you are posting too fast to this chat; wait a moment", ErrRateLimited)
	}
	return nil
}
