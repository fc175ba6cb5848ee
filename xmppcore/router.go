package xmppcore

import (
	"sync"
)

// router is the table of sessions by user, and who watches whose
// presence. Its mutex guards only the maps and is never held across a
// send (lock order: userEntry.deliverMu, then router.mu).
type router struct {
	mu    sync.RWMutex
	users map[int64]*userEntry
	// watchers: contact id -> ids of available users whose roster holds
	// the contact.
	watchers map[int64]map[int64]struct{}
}

// userEntry holds one online user's sessions.
type userEntry struct {
	id    int64
	login string
	// sessions is copy-on-write: replaced under router.mu, read freely.
	sessions []*Session
	// watching is the contacts this user's presence interest is
	// registered for (set while one of the user's sessions is available).
	watching []int64
	// deliverMu serializes live delivery to this user with the offline
	// flush of a session coming online, so no message is given twice.
	deliverMu sync.Mutex
	flushed   map[int64]struct{} // ids handed out by offline flush (guarded by deliverMu)
	flushedAt int64
	dl        delivery // delivery sequences, mark, in flight (guarded by deliverMu; delivery.go)
}

func newRouter() *router {
	return &router{users: map[int64]*userEntry{}, watchers: map[int64]map[int64]struct{}{}}
}

// bind registers sess for its user. A session with the same resource is
// returned as replaced (the caller closes it with conflict: RFC 6120
// 7.7.2.2, the new session wins).
func (r *router) bind(sess *Session) (old *Session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	u := r.users[sess.userID]
	if u == nil {
		u = &userEntry{id: sess.userID, login: sess.login}
		r.users[sess.userID] = u
	}
	sess.user = u
	next := make([]*Session, 0, len(u.sessions)+1)
	for _, o := range u.sessions {
		if o.resource == sess.resource {
			old = o
			continue
		}
		next = append(next, o)
	}
	u.sessions = append(next, sess)
	return old
}

// unbind removes sess; it reports whether the user has no sessions left.
func (r *router) unbind(sess *Session) (last bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	u := r.users[sess.userID]
	if u == nil {
		return false
	}
	next := make([]*Session, 0, len(u.sessions))
	found := false
	for _, o := range u.sessions {
		if o == sess {
			found = true
			continue
		}
		next = append(next, o)
	}
	if !found {
		return false
	}
	u.sessions = next
	if len(next) == 0 {
		delete(r.users, sess.userID)
		return true
	}
	return false
}

// sessions returns the user's sessions (a snapshot; do not modify).
func (r *router) sessions(userID int64) []*Session {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if u := r.users[userID]; u != nil {
		return u.sessions
	}
	return nil
}

func (r *router) entry(userID int64) *userEntry {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.users[userID]
}

// session returns the user's session with resource, or nil.
func (r *router) session(userID int64, resource string) *Session {
	for _, s := range r.sessions(userID) {
		if s.resource == resource {
			return s
		}
	}
	return nil
}

// entries returns the online users.
func (r *router) entries() []*userEntry {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]*userEntry, 0, len(r.users))
	for _, u := range r.users {
		out = append(out, u)
	}
	return out
}

func (r *router) all() []*Session {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []*Session
	for _, u := range r.users {
		out = append(out, u.sessions...)
	}
	return out
}

// watch registers userID's interest in the presence of contacts,
// replacing what was registered before.
func (r *router) watch(userID int64, contacts []int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	u := r.users[userID]
	if u == nil {
		return
	}
	for _, c := range u.watching {
		if m := r.watchers[c]; m != nil {
			delete(m, userID)
			if len(m) == 0 {
				delete(r.watchers, c)
			}
		}
	}
	u.watching = contacts
	for _, c := range contacts {
		m := r.watchers[c]
		if m == nil {
			m = map[int64]struct{}{}
			r.watchers[c] = m
		}
		m[userID] = struct{}{}
	}
}

// addWatch adds one contact to userID's presence interest.
func (r *router) addWatch(userID, contact int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	u := r.users[userID]
	if u == nil {
		return
	}
	m := r.watchers[contact]
	if m == nil {
		m = map[int64]struct{}{}
		r.watchers[contact] = m
	}
	if _, ok := m[userID]; ok {
		return
	}
	m[userID] = struct{}{}
	u.watching = append(u.watching[:len(u.watching):len(u.watching)], contact)
}

// unwatch drops all of userID's presence interest.
func (r *router) unwatch(userID int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	u := r.users[userID]
	if u == nil {
		return
	}
	for _, c := range u.watching {
		if m := r.watchers[c]; m != nil {
			delete(m, userID)
			if len(m) == 0 {
				delete(r.watchers, c)
			}
		}
	}
	u.watching = nil
}

// watchersOf returns the users watching contact's presence.
func (r *router) watchersOf(contact int64) []int64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	m := r.watchers[contact]
	out := make([]int64, 0, len(m))
	for id := range m {
		out = append(out, id)
	}
	return out
}

func (r *router) isWatching(userID, contact int64) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.watchers[contact][userID]
	return ok
}
