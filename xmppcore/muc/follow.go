package muc

import "context"

// Following is how sessions that are not XMPP clients (the web bridge)
// get chat messages: a following session receives every message of every
// chat its user is a member of — also chats joined later — exactly as an
// occupant does (the same groupchat stanza from the room), but it is not
// a room occupant: it sends no presence and is not listed. Membership
// changes update the followers at once.

// Follow makes the session full (a full JID of userID) follow the user's
// chats. Call Unfollow when the session ends.
func (s *Service) Follow(ctx context.Context, userID int64, full string) error {
	chats, err := s.store.ChatsOf(ctx, userID)
	if err != nil {
		return err
	}
	s.mu.Lock()
	fs := s.follows[userID]
	if fs == nil {
		fs = make(map[string]struct{})
		s.follows[userID] = fs
	}
	fs[full] = struct{}{}
	for _, c := range chats {
		s.addFollowerLocked(c.ID, full)
	}
	s.mu.Unlock()
	for _, c := range chats {
		s.watch(c.ID)
	}
	return nil
}

// Unfollow ends Follow for one session.
func (s *Service) Unfollow(userID int64, full string) {
	s.mu.Lock()
	if fs := s.follows[userID]; fs != nil {
		delete(fs, full)
		if len(fs) == 0 {
			delete(s.follows, userID)
		}
	}
	var emptied []int64
	for chatID, fs := range s.followers {
		delete(fs, full)
		if len(fs) == 0 {
			delete(s.followers, chatID)
			emptied = append(emptied, chatID)
		}
	}
	s.mu.Unlock()
	for _, id := range emptied {
		s.watch(id)
	}
}

func (s *Service) addFollowerLocked(chatID int64, full string) {
	fs := s.followers[chatID]
	if fs == nil {
		fs = make(map[string]struct{})
		s.followers[chatID] = fs
	}
	fs[full] = struct{}{}
}

// memberChanged follows up a membership change: the user's following
// sessions start or stop getting the chat, and their clients get the
// bookmark pushed or retracted.
func (s *Service) memberChanged(ctx context.Context, userID int64, c *Chat, member bool) {
	s.mu.Lock()
	for full := range s.follows[userID] {
		if member {
			s.addFollowerLocked(c.ID, full)
		} else if fs := s.followers[c.ID]; fs != nil {
			delete(fs, full)
		}
	}
	s.mu.Unlock()
	s.watch(c.ID)
	s.pushBookmark(ctx, userID, c, member)
}

// followersOf returns the following sessions of a chat.
func (s *Service) followersOf(chatID int64) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	fs := s.followers[chatID]
	if len(fs) == 0 {
		return nil
	}
	out := make([]string, 0, len(fs))
	for full := range fs {
		out = append(out, full)
	}
	return out
}
