package xmppcore

import (
	"context"
	"sync"
	"time"
)

// userCacheTTL is how long an account looked up by login or id is reused;
// change events (deactivated, user_updated) drop it earlier.
const userCacheTTL = time.Minute

// userCache keeps recently used accounts, so routing a message to a login
// does not query the directory every time.
type userCache struct {
	dir      Directory
	mu       sync.Mutex // guards loginMap, idMap
	loginMap map[string]cachedAccount
	idMap    map[int64]cachedAccount
}

type cachedAccount struct {
	acc *Account
	at  time.Time
}

func newUserCache(dir Directory) *userCache {
	return &userCache{dir: dir, loginMap: map[string]cachedAccount{}, idMap: map[int64]cachedAccount{}}
}

func (c *userCache) byLoginName(login string) *Account {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.loginMap[login]; ok && time.Since(e.at) < userCacheTTL {
		return e.acc
	}
	return nil
}

func (c *userCache) put(a *Account) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.idMap) > 100000 {
		c.loginMap = map[string]cachedAccount{}
		c.idMap = map[int64]cachedAccount{}
	}
	e := cachedAccount{acc: a, at: time.Now()}
	c.loginMap[a.Login] = e
	c.idMap[a.ID] = e
}

// byLogin returns the account (active or not), ErrNotFound if unknown.
func (c *userCache) byLogin(ctx context.Context, login string) (*Account, error) {
	if a := c.byLoginName(login); a != nil {
		return a, nil
	}
	a, err := c.dir.UserByLogin(ctx, login)
	if err != nil {
		return nil, err
	}
	c.put(a)
	return a, nil
}

func (c *userCache) byID(ctx context.Context, id int64) (*Account, error) {
	c.mu.Lock()
	e, ok := c.idMap[id]
	c.mu.Unlock()
	if ok && time.Since(e.at) < userCacheTTL {
		return e.acc, nil
	}
	a, err := c.dir.UserByID(ctx, id)
	if err != nil {
		return nil, err
	}
	c.put(a)
	return a, nil
}

// forget drops a user after a change event.
func (c *userCache) forget(id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.idMap[id]; ok {
		delete(c.loginMap, e.acc.Login)
		delete(c.idMap, id)
	}
}

// The process's one user cache: doors (the bridge) and services look
// users up through the server, and every cache of users in the process
// is dropped by the same change events (applyEvents: deactivated,
// password, logout, user_updated — a login rename is a user_updated).

// UserByID returns the account with internal id (active or not) through
// the server's cache; ErrNotFound if unknown.
func (s *Server) UserByID(ctx context.Context, id int64) (*Account, error) {
	return s.users.byID(ctx, id)
}

// UserByLogin returns the account with login (active or not) through the
// server's cache; ErrNotFound if unknown.
func (s *Server) UserByLogin(ctx context.Context, login string) (*Account, error) {
	return s.users.byLogin(ctx, login)
}

// OnUserChanged adds a hook told of every user whose account changed
// (login, name, deactivation, credentials), after the server's own cache
// dropped them: services that keep users drop them too. Hooks run on the
// change-event goroutine and must not block.
func (s *Server) OnUserChanged(f func(userID int64)) {
	s.extMu.Lock()
	defer s.extMu.Unlock()
	s.userHooks = append(s.userHooks, f)
}

// userChanged drops a user from every cache in the process.
func (s *Server) userChanged(id int64) {
	s.users.forget(id)
	s.extMu.RLock()
	hooks := s.userHooks
	s.extMu.RUnlock()
	for _, f := range hooks {
		f(id)
	}
}
