package muc

import (
	"context"
	"sync"
	"time"

	"vestnik/roster"
)

// userTTL is how long a looked-up user is trusted: names and logins change
// rarely, and a deactivated user's sessions are closed by the XMPP server
// at once, so a few seconds of staleness here is harmless.
const userTTL = 5 * time.Second

// maxCachedUsers bounds the cache; past it the cache starts over.
const maxCachedUsers = 100000

// userCache keeps recent roster lookups by id for the hot path (posting
// and fan-out), so a busy chat does not ask the database for its authors
// on every message.
type userCache struct {
	users *roster.Store
	mu    sync.Mutex // guards m
	m     map[int64]cachedUser
}

type cachedUser struct {
	u       *roster.User
	expires time.Time
}

func (c *userCache) byID(ctx context.Context, id int64) (*roster.User, error) {
	now := time.Now()
	c.mu.Lock()
	e, ok := c.m[id]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.u, nil
	}
	u, err := c.users.UserByID(ctx, id)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.m) >= maxCachedUsers {
		clear(c.m)
	}
	c.m[id] = cachedUser{u: u, expires: now.Add(userTTL)}
	c.mu.Unlock()
	return u, nil
}

// forget drops a user whose account changed (xmppcore.Server.OnUserChanged).
func (c *userCache) forget(id int64) {
	c.mu.Lock()
	delete(c.m, id)
	c.mu.Unlock()
}
