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
