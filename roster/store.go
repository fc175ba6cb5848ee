// Package roster owns the org structure and everything derived from it:
// departments and employees (kept in sync with the portal by HR import),
// accounts with SCRAM credentials, REST API tokens, the rosters generated
// from the org structure and merged with each user's own edits, and the
// change events that running servers poll to push rosters and close the
// sessions of deactivated users.
package roster

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
)

// ErrNotFound is returned when a user, department, credential or token does
// not exist.
var ErrNotFound = errors.New("roster: not found")

// queryTimeout bounds every single query of the store; Import uses
// importTimeout for its whole transaction.
const queryTimeout = 10 * time.Second

// Store reads and writes the org structure, accounts and rosters.
type Store struct {
	db     *sqlx.DB
	domain string

	mu      sync.Mutex // guards genStmt
	genStmt *sqlx.Stmt
}

// NewStore returns a Store over db (migrated by package migrations).
func NewStore(db *sqlx.DB) *Store {
	return &Store{db: db}
}

// SetDomain tells the store the server's XMPP domain, so that SetItem and
// RemoveItem recognize bare JIDs login@domain as employees. Without it only
// bare logins (and Item.ContactID / Item.Login) name employees.
func (s *Store) SetDomain(domain string) { s.domain = strings.ToLower(domain) }

// User is an employee.
type User struct {
	ID          int64
	ExtID       string // the portal's id
	Login       string // the XMPP localpart
	Name        string
	Email       string
	Title       string
	PhotoURL    string // the HR import's photo URL; "" = none
	ManagerID   int64  // effective manager; 0 = none
	Active      bool
	Departments []int64 // department ids, first = primary
}

// Department is a node of the org tree.
type Department struct {
	ID       int64
	ExtID    string
	Name     string
	ParentID int64 // 0 = root
	HeadID   int64 // 0 = no head
}

type userRow struct {
	ID        int64         `db:"id"`
	ExtID     string        `db:"ext_id"`
	Login     string        `db:"login"`
	Name      string        `db:"name"`
	Email     string        `db:"email"`
	Title     string        `db:"title"`
	ManagerID sql.NullInt64 `db:"manager_id"`
	Active    bool          `db:"active"`
	PhotoURL  string        `db:"photo_url"`
}

func (r userRow) user() User {
	return User{ID: r.ID, ExtID: r.ExtID, Login: r.Login, Name: r.Name, Email: r.Email,
		Title: r.Title, PhotoURL: r.PhotoURL, ManagerID: r.ManagerID.Int64, Active: r.Active}
}

const userCols = `id, ext_id, login, name, email, title, manager_id, active, photo_url`

func (s *Store) userBy(ctx context.Context, col string, v any) (*User, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var r userRow
	err := s.db.GetContext(ctx, &r, s.db.Rebind(`SELECT `+userCols+` FROM users WHERE `+col+` = ?`), v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("roster: user by %s: %w", col, err)
	}
	u := r.user()
	if err := s.db.SelectContext(ctx, &u.Departments, s.db.Rebind(
		`SELECT department_id FROM user_departments WHERE user_id = ? ORDER BY pos`), u.ID); err != nil {
		return nil, fmt.Errorf("roster: departments of user %d: %w", u.ID, err)
	}
	return &u, nil
}

// UserByID returns the user with the internal id, active or not.
func (s *Store) UserByID(ctx context.Context, id int64) (*User, error) {
	return s.userBy(ctx, "id", id)
}

// UserByLogin returns the user with the login, active or not.
func (s *Store) UserByLogin(ctx context.Context, login string) (*User, error) {
	return s.userBy(ctx, "login", normLogin(login))
}

// normLogin maps a login as a client may type it (SASL authcid, web form)
// to the stored form.
func normLogin(login string) string {
	if l, err := NormalizeLogin(login); err == nil {
		return l
	}
	return strings.ToLower(login)
}

// UserByExtID returns the user with the portal id, active or not.
func (s *Store) UserByExtID(ctx context.Context, extID string) (*User, error) {
	return s.userBy(ctx, "ext_id", extID)
}

// Users returns all active users ordered by name, with their departments.
func (s *Store) Users(ctx context.Context) ([]User, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var rows []userRow
	if err := s.db.SelectContext(ctx, &rows, `SELECT `+userCols+` FROM users WHERE active ORDER BY name, id`); err != nil {
		return nil, fmt.Errorf("roster: users: %w", err)
	}
	var uds []struct {
		UserID int64 `db:"user_id"`
		DeptID int64 `db:"department_id"`
	}
	if err := s.db.SelectContext(ctx, &uds, `SELECT ud.user_id, ud.department_id FROM user_departments ud
		JOIN users u ON u.id = ud.user_id WHERE u.active ORDER BY ud.user_id, ud.pos`); err != nil {
		return nil, fmt.Errorf("roster: user departments: %w", err)
	}
	depts := make(map[int64][]int64, len(rows))
	for _, ud := range uds {
		depts[ud.UserID] = append(depts[ud.UserID], ud.DeptID)
	}
	users := make([]User, len(rows))
	for i, r := range rows {
		users[i] = r.user()
		users[i].Departments = depts[r.ID]
	}
	return users, nil
}

type deptRow struct {
	ID       int64         `db:"id"`
	ExtID    string        `db:"ext_id"`
	Name     string        `db:"name"`
	ParentID sql.NullInt64 `db:"parent_id"`
	HeadID   sql.NullInt64 `db:"head_id"`
	Active   bool          `db:"active"`
}

// Departments returns the active departments, parents before children.
func (s *Store) Departments(ctx context.Context) ([]Department, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var rows []deptRow
	if err := s.db.SelectContext(ctx, &rows, `SELECT id, ext_id, name, parent_id, head_id, active FROM departments WHERE active ORDER BY id`); err != nil {
		return nil, fmt.Errorf("roster: departments: %w", err)
	}
	ds := make([]Department, len(rows))
	depth := make(map[int64]int, len(rows))
	parent := make(map[int64]int64, len(rows))
	for i, r := range rows {
		ds[i] = Department{ID: r.ID, ExtID: r.ExtID, Name: r.Name, ParentID: r.ParentID.Int64, HeadID: r.HeadID.Int64}
		parent[r.ID] = r.ParentID.Int64
	}
	var level func(id int64, n int) int
	level = func(id int64, n int) int {
		if d, ok := depth[id]; ok {
			return d
		}
		p, ok := parent[id]
		if !ok || p == 0 || n > len(rows) {
			return 0
		}
		d := level(p, n+1) + 1
		depth[id] = d
		return d
	}
	sort.SliceStable(ds, func(i, j int) bool { return level(ds[i].ID, 0) < level(ds[j].ID, 0) })
	return ds, nil
}

// withTx runs f in a transaction, committing when it returns nil.
func (s *Store) withTx(ctx context.Context, f func(tx *sqlx.Tx) error) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := f(tx); err != nil {
		return err
	}
	return tx.Commit()
}

func now() int64 { return time.Now().UnixMicro() }
