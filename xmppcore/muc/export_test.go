package muc

// RemoteOccupants counts the occupants of a chat's room joined through
// other nodes, as this node knows them.
func (s *Service) RemoteOccupants(chatID int64) int {
	r := s.room(chatID, false)
	if r == nil {
		return 0
	}
	return len(r.remoteList())
}
