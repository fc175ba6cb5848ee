package roster

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// importTimeout bounds one HR import transaction.
const importTimeout = 5 * time.Minute

// analyzeAfter is how many changed users make Import refresh statistics.
const analyzeAfter = 1000

// maxReportLines bounds Report.Lines; the rest are counted.
const maxReportLines = 2000

// Report says what an import changed (or would change, on a dry run).
type Report struct {
	Created     int `json:"created"`
	Updated     int `json:"updated"`
	Deactivated int `json:"deactivated"`

	DepartmentsCreated     int `json:"-"`
	DepartmentsUpdated     int `json:"-"`
	DepartmentsDeactivated int `json:"-"`
	Events                 int `json:"-"` // change events written for running servers

	// Lines describe the changes for humans, one per line.
	Lines  []string `json:"-"`
	More   int      `json:"-"` // lines left out past maxReportLines
	DryRun bool     `json:"-"`
}

func (r *Report) line(format string, args ...any) {
	if len(r.Lines) >= maxReportLines {
		r.More++
		return
	}
	r.Lines = append(r.Lines, fmt.Sprintf(format, args...))
}

// Changed reports whether the import changed anything.
func (r *Report) Changed() bool {
	return r.Created+r.Updated+r.Deactivated+r.DepartmentsCreated+r.DepartmentsUpdated+r.DepartmentsDeactivated > 0
}

// String is the summary line.
func (r *Report) String() string {
	s := fmt.Sprintf("employees: %d created, %d updated, %d deactivated; departments: %d created, %d updated, %d deactivated",
		r.Created, r.Updated, r.Deactivated, r.DepartmentsCreated, r.DepartmentsUpdated, r.DepartmentsDeactivated)
	if r.DryRun {
		s += " (dry run: nothing applied)"
	}
	return s
}

type dbUser struct {
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

// Import applies a full snapshot of the org structure in one transaction
// (SPEC §3): employees and departments are created, updated, deactivated
// (never deleted) and reactivated; effective managers are recomputed; new
// accounts get the given password. It writes change events: roster_add and
// roster_remove for every roster of a user active before and after whose
// generated part changed (roster_add also when the contact's groups or name
// changed), deactivated for each deactivated user, and user_updated for
// changed names, titles, logins or emails. With dryRun the
// same report is computed and everything is rolled back.
//
// Import refuses a snapshot that would deactivate more than
// MaxDeactivatedShare of the active employees (ImportWith can force it).
func (s *Store) Import(ctx context.Context, snap *Snapshot, dryRun bool) (*Report, error) {
	return s.ImportWith(ctx, snap, ImportOptions{DryRun: dryRun})
}

// MaxDeactivatedShare is the default share of active employees one import
// may deactivate: a larger one is far more often a broken export (an
// empty file, one department instead of the company) than a real change.
const MaxDeactivatedShare = 0.5

// ErrMassDeactivation is returned (wrapped, with the figures) for a
// snapshot that would deactivate more than the allowed share of active
// employees; nothing is applied.
var ErrMassDeactivation = errors.New("roster: the import would deactivate too many employees")

// ImportOptions tune one import; zero values are the defaults.
type ImportOptions struct {
	DryRun bool
	// Force applies the snapshot whatever share of employees it deactivates.
	Force bool
	// MaxDeactivatedShare overrides MaxDeactivatedShare (0 < share <= 1).
	MaxDeactivatedShare float64
}

// ImportWith is Import with options.
func (s *Store) ImportWith(ctx context.Context, snap *Snapshot, o ImportOptions) (*Report, error) {
	dryRun := o.DryRun
	share := o.MaxDeactivatedShare
	if share <= 0 || share > 1 {
		share = MaxDeactivatedShare
	}
	if err := snap.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, importTimeout)
	defer cancel()
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("roster: import: %w", err)
	}
	defer tx.Rollback()
	if tx.DriverName() == "postgres" {
		// One import at a time (SQLite's immediate transactions already
		// serialize writers).
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7467373)`); err != nil {
			return nil, fmt.Errorf("roster: import: lock: %w", err)
		}
	}
	im := &importer{tx: tx, snap: snap, rep: &Report{DryRun: dryRun}, t: now()}
	if err := im.run(ctx); err != nil {
		var ie *ImportError
		if errors.As(err, &ie) {
			return nil, err
		}
		return nil, fmt.Errorf("roster: import: %w", err)
	}
	if active := len(im.stable); !o.Force && float64(im.rep.Deactivated) > share*float64(active) {
		return nil, fmt.Errorf("%w: %d of %d active employees (more than %.0f%%); nothing was applied — check the export, or force it",
			ErrMassDeactivation, im.rep.Deactivated, active, share*100)
	}
	if dryRun {
		return im.rep, nil
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("roster: import: commit: %w", err)
	}
	if im.rep.Created+im.rep.Deactivated+len(im.affected) >= analyzeAfter {
		// Big changes: refresh the planner's statistics now rather than
		// when autovacuum comes by, or roster queries may plan badly.
		if _, err := s.db.ExecContext(ctx, `ANALYZE users`); err == nil {
			s.db.ExecContext(ctx, `ANALYZE user_departments`)
			s.db.ExecContext(ctx, `ANALYZE departments`)
		}
	}
	return im.rep, nil
}

type importer struct {
	tx   *sqlx.Tx
	snap *Snapshot
	rep  *Report
	t    int64

	users        map[string]*dbUser // by ext id, all users in the database
	userID       map[ExtID]int64    // snapshot employee → internal id
	depts        map[string]*deptRow
	deptID       map[ExtID]int64
	members      map[int64][]int64 // current user → departments in order
	affected     map[int64]bool    // users whose generated roster relations may change
	stable       map[int64]bool    // users active before the import
	gone         map[int64]bool    // users the import deactivates
	newName      map[int64]bool    // users whose name changes
	updated      map[int64]bool    // existing users already counted in the report
	logins       map[int64]string  // for report lines
	deptNameByID map[int64]string
	events       []Event
}

func (im *importer) run(ctx context.Context) error {
	if err := im.load(ctx); err != nil {
		return err
	}
	if err := im.checkLogins(); err != nil {
		return err
	}
	im.affected, im.gone, im.newName = map[int64]bool{}, map[int64]bool{}, map[int64]bool{}
	im.markAffected()

	// The generated relation before the writes, around the affected users.
	scoped := len(im.stable) > 0 && len(im.affected) > 0
	var before map[[2]int64]string
	if scoped {
		if err := im.fillScope(ctx); err != nil {
			return err
		}
		var err error
		if before, err = im.relation(ctx); err != nil {
			return err
		}
	}

	if err := im.applyUsers(ctx); err != nil {
		return err
	}
	if err := im.applyDepartments(ctx); err != nil {
		return err
	}
	plan := im.planMemberships()
	managers := im.planManagers()
	if err := im.applyMemberships(ctx, plan); err != nil {
		return err
	}
	if err := im.applyManagers(ctx, managers); err != nil {
		return err
	}
	if err := im.applyPasswords(ctx); err != nil {
		return err
	}
	if scoped {
		if err := im.fillScope(ctx); err != nil { // now with new users
			return err
		}
		after, err := im.relation(ctx)
		if err != nil {
			return err
		}
		if err := im.rosterEvents(ctx, before, after); err != nil {
			return err
		}
		if _, err := im.tx.ExecContext(ctx, `DROP TABLE roster_scope`); err != nil {
			return err
		}
	}
	if err := endSessions(ctx, im.tx, sortedIDs(im.gone)); err != nil {
		return err
	}
	if _, err := prune(ctx, im.tx); err != nil {
		return err
	}
	if err := insertEvents(ctx, im.tx, im.events); err != nil {
		return err
	}
	im.rep.Events = len(im.events)
	return nil
}

func (im *importer) load(ctx context.Context) error {
	var us []*dbUser
	// Bots (bots.go) are not employees: an import neither sees nor
	// deactivates them.
	if err := im.tx.SelectContext(ctx, &us, `SELECT `+userCols+` FROM users WHERE id NOT IN (SELECT user_id FROM bots)`); err != nil {
		return err
	}
	im.users = make(map[string]*dbUser, len(us))
	im.stable = map[int64]bool{}
	for _, u := range us {
		im.users[u.ExtID] = u
		if u.Active {
			im.stable[u.ID] = true
		}
	}
	var ds []*deptRow
	if err := im.tx.SelectContext(ctx, &ds, `SELECT id, ext_id, name, parent_id, head_id, active FROM departments`); err != nil {
		return err
	}
	im.depts = make(map[string]*deptRow, len(ds))
	for _, d := range ds {
		im.depts[d.ExtID] = d
	}
	var uds []struct {
		UserID int64 `db:"user_id"`
		DeptID int64 `db:"department_id"`
	}
	if err := im.tx.SelectContext(ctx, &uds, `SELECT user_id, department_id FROM user_departments ORDER BY user_id, pos`); err != nil {
		return err
	}
	im.members = make(map[int64][]int64, len(us))
	for _, ud := range uds {
		im.members[ud.UserID] = append(im.members[ud.UserID], ud.DeptID)
	}
	return nil
}

// markAffected finds, before anything is written, the existing users whose
// generated roster relations may change: those activated or deactivated,
// moved between departments, given another effective manager, or members
// of a renamed department. New users are added as they are created.
func (im *importer) markAffected() {
	deptExt := make(map[int64]string, len(im.depts))
	for _, d := range im.depts {
		deptExt[d.ID] = d.ExtID
	}
	userExt := make(map[int64]string, len(im.users))
	for _, u := range im.users {
		userExt[u.ID] = u.ExtID
	}
	renamed := map[int64]bool{}
	for i := range im.snap.Departments {
		d := &im.snap.Departments[i]
		if cur := im.depts[string(d.ID)]; cur != nil && cur.Name != d.Name {
			renamed[cur.ID] = true
		}
	}
	eff := im.snap.effectiveManagers()
	inSnap := make(map[string]bool, len(im.snap.Employees))
	for i := range im.snap.Employees {
		e := &im.snap.Employees[i]
		inSnap[string(e.ID)] = true
		cur := im.users[string(e.ID)]
		if cur == nil {
			continue
		}
		mine := im.members[cur.ID]
		changed := cur.Active != e.active() || len(mine) != len(e.Departments) ||
			userExt[cur.ManagerID.Int64] != string(eff[i])
		for j := 0; !changed && j < len(mine); j++ {
			changed = deptExt[mine[j]] != string(e.Departments[j]) || renamed[mine[j]]
		}
		if cur.Name != e.Name && cur.Active && e.active() {
			// Everyone who has them gets the item again, with the new name.
			im.newName[cur.ID] = true
			changed = true
		}
		if changed {
			im.affected[cur.ID] = true
		}
		if cur.Active && !e.active() {
			im.gone[cur.ID] = true
		}
	}
	for _, u := range im.users {
		if !inSnap[u.ExtID] && u.Active {
			im.affected[u.ID] = true
			im.gone[u.ID] = true
		}
	}
}

// checkLogins refuses a login still held by a user who is not in the
// snapshot (deactivated users keep theirs).
func (im *importer) checkLogins() error {
	inSnap := make(map[string]bool, len(im.snap.Employees))
	for i := range im.snap.Employees {
		inSnap[string(im.snap.Employees[i].ID)] = true
	}
	holder := make(map[string]*dbUser, len(im.users))
	for _, u := range im.users {
		holder[u.Login] = u
	}
	var ps problems
	for i := range im.snap.Employees {
		e := &im.snap.Employees[i]
		if h := holder[e.Login]; h != nil && h.ExtID != string(e.ID) && !inSnap[h.ExtID] {
			ps.add(im.snap.empPlace(i), "login", "%q belongs to employee id %s, who is not in the import (deactivated employees keep their login)", e.Login, h.ExtID)
		}
	}
	return ps.err()
}

func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

func (im *importer) applyUsers(ctx context.Context) error {
	im.userID = make(map[ExtID]int64, len(im.snap.Employees))
	im.updated = map[int64]bool{}
	im.logins = make(map[int64]string, len(im.users)+len(im.snap.Employees))
	for _, u := range im.users {
		im.logins[u.ID] = u.Login
	}
	var inserts [][]any
	var newIdx []int
	type upd struct {
		u    *dbUser
		e    *SnapshotEmployee
		temp bool // the login moves: rename through a temporary value first
	}
	var updates []upd
	inSnap := make(map[string]bool, len(im.snap.Employees))
	for i := range im.snap.Employees {
		e := &im.snap.Employees[i]
		inSnap[string(e.ID)] = true
		cur := im.users[string(e.ID)]
		if cur == nil {
			inserts = append(inserts, []any{string(e.ID), e.Login, e.Name, e.Email, e.Title, e.Photo, e.active(), im.t, im.t})
			newIdx = append(newIdx, i)
			im.rep.Created++
			state := ""
			if !e.active() {
				state = " (inactive)"
			}
			im.rep.line("created %s %q%s", e.Login, e.Name, state)
			continue
		}
		im.userID[e.ID] = cur.ID
		var what []string
		if cur.Login != e.Login {
			what = append(what, fmt.Sprintf("login %s → %s", cur.Login, e.Login))
		}
		if cur.Name != e.Name {
			what = append(what, fmt.Sprintf("name %q → %q", cur.Name, e.Name))
		}
		if cur.Email != e.Email {
			what = append(what, fmt.Sprintf("email %q → %q", cur.Email, e.Email))
		}
		if cur.Title != e.Title {
			what = append(what, fmt.Sprintf("title %q → %q", cur.Title, e.Title))
		}
		if cur.PhotoURL != e.Photo {
			what = append(what, fmt.Sprintf("photo %q → %q", cur.PhotoURL, e.Photo))
		}
		if len(what) > 0 && e.active() {
			im.events = append(im.events, Event{Kind: EventUserUpdated, UserID: cur.ID})
		}
		switch {
		case cur.Active && !e.active():
			im.rep.Deactivated++
			im.rep.line("deactivated %s %q", cur.Login, cur.Name)
			im.events = append(im.events, Event{Kind: EventDeactivated, UserID: cur.ID})
			im.affected[cur.ID] = true
			im.gone[cur.ID], im.updated[cur.ID] = true, true
		case !cur.Active && e.active():
			what = append(what, "reactivated")
			im.affected[cur.ID] = true
		}
		if len(what) > 0 && !im.updated[cur.ID] {
			im.rep.Updated++
			im.updated[cur.ID] = true
		}
		if len(what) > 0 {
			im.rep.line("updated %s: %s", e.Login, strings.Join(what, ", "))
		}
		if len(what) > 0 || cur.Active != e.active() {
			updates = append(updates, upd{u: cur, e: e, temp: cur.Login != e.Login})
		}
	}
	for _, u := range im.users {
		if !inSnap[u.ExtID] && u.Active {
			im.rep.Deactivated++
			im.rep.line("deactivated %s %q (not in the import)", u.Login, u.Name)
			im.events = append(im.events, Event{Kind: EventDeactivated, UserID: u.ID})
			im.affected[u.ID] = true
			im.gone[u.ID], im.updated[u.ID] = true, true
			updates = append(updates, upd{u: u, e: &SnapshotEmployee{ID: ExtID(u.ExtID), Login: u.Login, Name: u.Name,
				Email: u.Email, Title: u.Title, Photo: u.PhotoURL, Active: new(bool)}})
		}
	}

	if len(updates) > 0 {
		var temp [][]any
		for _, x := range updates {
			if x.temp {
				temp = append(temp, []any{x.u.ID, fmt.Sprintf(" rename %d", x.u.ID)})
			}
		}
		if err := updateRows(ctx, im.tx, "users", []string{"login"}, []string{"TEXT"}, temp); err != nil {
			return err
		}
		rows := make([][]any, len(updates))
		for i, x := range updates {
			rows[i] = []any{x.u.ID, x.e.Login, x.e.Name, x.e.Email, x.e.Title, x.e.Photo, x.e.active(), im.t}
		}
		if err := updateRows(ctx, im.tx, "users", []string{"login", "name", "email", "title", "photo_url", "active", "updated_at"},
			[]string{"TEXT", "TEXT", "TEXT", "TEXT", "TEXT", "BOOLEAN", "BIGINT"}, rows); err != nil {
			return err
		}
	}
	if len(inserts) > 0 {
		err := insertReturning(ctx, im.tx, "users", []string{"ext_id", "login", "name", "email", "title", "photo_url", "active", "created_at", "updated_at"},
			inserts, "id, ext_id", func(rs *sqlx.Rows) error {
				var id int64
				var ext string
				if err := rs.Scan(&id, &ext); err != nil {
					return err
				}
				im.userID[ExtID(ext)] = id
				return nil
			})
		if err != nil {
			return err
		}
		for _, i := range newIdx {
			im.logins[im.userID[im.snap.Employees[i].ID]] = im.snap.Employees[i].Login
			e := &im.snap.Employees[i]
			if len(e.Departments) > 0 || e.Manager != "" {
				im.affected[im.userID[e.ID]] = true
			}
		}
	}
	return nil
}

func (im *importer) applyDepartments(ctx context.Context) error {
	im.deptID = make(map[ExtID]int64, len(im.snap.Departments))
	var inserts [][]any
	for i := range im.snap.Departments {
		d := &im.snap.Departments[i]
		if cur := im.depts[string(d.ID)]; cur != nil {
			im.deptID[d.ID] = cur.ID
			continue
		}
		inserts = append(inserts, []any{string(d.ID), d.Name, true})
		im.rep.DepartmentsCreated++
		im.rep.line("created department %q", d.Name)
	}
	if len(inserts) > 0 {
		err := insertReturning(ctx, im.tx, "departments", []string{"ext_id", "name", "active"}, inserts, "id, ext_id",
			func(rs *sqlx.Rows) error {
				var id int64
				var ext string
				if err := rs.Scan(&id, &ext); err != nil {
					return err
				}
				im.deptID[ExtID(ext)] = id
				return nil
			})
		if err != nil {
			return err
		}
	}
	var updates [][]any
	inSnap := make(map[string]bool, len(im.snap.Departments))
	for i := range im.snap.Departments {
		d := &im.snap.Departments[i]
		inSnap[string(d.ID)] = true
		parent, head := im.deptID[d.Parent], im.userID[d.Head]
		cur := im.depts[string(d.ID)]
		if cur == nil {
			if parent != 0 || head != 0 {
				updates = append(updates, []any{im.deptID[d.ID], d.Name, nullID(parent), nullID(head), true})
			}
			continue
		}
		var what []string
		if cur.Name != d.Name {
			what = append(what, fmt.Sprintf("name %q → %q", cur.Name, d.Name))
		}
		if cur.ParentID.Int64 != parent {
			what = append(what, "parent")
		}
		if cur.HeadID.Int64 != head {
			what = append(what, "head")
		}
		if !cur.Active {
			what = append(what, "reactivated")
		}
		if len(what) > 0 {
			im.rep.DepartmentsUpdated++
			im.rep.line("updated department %q: %s", d.Name, strings.Join(what, ", "))
			updates = append(updates, []any{cur.ID, d.Name, nullID(parent), nullID(head), true})
		}
	}
	for _, d := range im.depts {
		if !inSnap[d.ExtID] && d.Active {
			im.rep.DepartmentsDeactivated++
			im.rep.line("deactivated department %q", d.Name)
			updates = append(updates, []any{d.ID, d.Name, d.ParentID, d.HeadID, false})
		}
	}
	return updateRows(ctx, im.tx, "departments", []string{"name", "parent_id", "head_id", "active"},
		[]string{"TEXT", "BIGINT", "BIGINT", "BOOLEAN"}, updates)
}

// planMemberships returns the users whose department list changes, with
// the new list, and marks them affected.
func (im *importer) planMemberships() map[int64][]int64 {
	plan := map[int64][]int64{}
	for i := range im.snap.Employees {
		e := &im.snap.Employees[i]
		uid := im.userID[e.ID]
		want := make([]int64, len(e.Departments))
		for j, d := range e.Departments {
			want[j] = im.deptID[d]
		}
		if !slices.Equal(want, im.members[uid]) {
			plan[uid] = want
			im.affected[uid] = true
			if im.users[string(e.ID)] != nil {
				im.countUpdate(uid)
				im.rep.line("updated %s: departments %s → %s", e.Login, im.deptNames(im.members[uid]), im.deptNames(want))
			}
		}
	}
	return plan
}

func (im *importer) planManagers() map[int64]int64 {
	eff := im.snap.effectiveManagers()
	out := map[int64]int64{}
	for i := range im.snap.Employees {
		e := &im.snap.Employees[i]
		uid := im.userID[e.ID]
		m := im.userID[eff[i]]
		cur := int64(0)
		if u := im.users[string(e.ID)]; u != nil {
			cur = u.ManagerID.Int64
		}
		if m != cur {
			out[uid] = m
			im.affected[uid] = true
			if im.users[string(e.ID)] != nil {
				im.countUpdate(uid)
				im.rep.line("updated %s: manager %s → %s", e.Login, im.loginOf(cur), im.loginOf(m))
			}
		}
	}
	return out
}

func (im *importer) countUpdate(uid int64) {
	if !im.updated[uid] {
		im.updated[uid] = true
		im.rep.Updated++
	}
}

func (im *importer) loginOf(id int64) string {
	if id == 0 {
		return "(none)"
	}
	return im.logins[id]
}

func (im *importer) deptNames(ids []int64) string {
	if len(ids) == 0 {
		return "(none)"
	}
	if im.deptNameByID == nil {
		im.deptNameByID = make(map[int64]string, len(im.deptID))
		for _, d := range im.depts {
			im.deptNameByID[d.ID] = d.Name
		}
		for i := range im.snap.Departments {
			im.deptNameByID[im.deptID[im.snap.Departments[i].ID]] = im.snap.Departments[i].Name
		}
	}
	byID := im.deptNameByID
	names := make([]string, len(ids))
	for i, id := range ids {
		names[i] = byID[id]
	}
	return strings.Join(names, ", ")
}

func (im *importer) applyMemberships(ctx context.Context, plan map[int64][]int64) error {
	if len(plan) == 0 {
		return nil
	}
	ids := make([]int64, 0, len(plan))
	var rows [][]any
	for uid, ds := range plan {
		ids = append(ids, uid)
		for pos, d := range ds {
			rows = append(rows, []any{uid, d, pos})
		}
	}
	if len(im.members) > 0 {
		if err := deleteIn(ctx, im.tx, "user_departments", "user_id", ids); err != nil {
			return err
		}
	}
	return insertRows(ctx, im.tx, "user_departments", []string{"user_id", "department_id", "pos"}, rows)
}

func (im *importer) applyManagers(ctx context.Context, managers map[int64]int64) error {
	if len(managers) == 0 {
		return nil
	}
	rows := make([][]any, 0, len(managers))
	for uid, m := range managers {
		rows = append(rows, []any{uid, nullID(m)})
	}
	return updateRows(ctx, im.tx, "users", []string{"manager_id"}, []string{"BIGINT"}, rows)
}

func (im *importer) applyPasswords(ctx context.Context) error {
	for i := range im.snap.Employees {
		e := &im.snap.Employees[i]
		if e.Password == "" || im.users[string(e.ID)] != nil {
			continue
		}
		c, err := newCredentials(e.Password)
		if err != nil {
			return err
		}
		c.UserID = im.userID[e.ID]
		if err := putCredentials(ctx, im.tx, c); err != nil {
			return err
		}
	}
	return nil
}

// fillScope puts the affected users into the temporary table roster_scope.
func (im *importer) fillScope(ctx context.Context) error {
	if _, err := im.tx.ExecContext(ctx, `CREATE TEMPORARY TABLE IF NOT EXISTS roster_scope (id BIGINT PRIMARY KEY)`); err != nil {
		return err
	}
	if _, err := im.tx.ExecContext(ctx, `DELETE FROM roster_scope`); err != nil {
		return err
	}
	rows := make([][]any, 0, len(im.affected))
	for id := range im.affected {
		rows = append(rows, []any{id})
	}
	if err := insertRows(ctx, im.tx, "roster_scope", []string{"id"}, rows); err != nil {
		return err
	}
	if im.tx.DriverName() == "postgres" {
		if _, err := im.tx.ExecContext(ctx, `ANALYZE roster_scope`); err != nil {
			return err
		}
	}
	return nil
}

// relation returns the generated relation rows touching the affected
// users, keyed by (user, contact) with the sorted groups joined by "\n",
// restricted to users who are active both before and after the import
// (only they can have sessions that need pushes).
func (im *importer) relation(ctx context.Context) (map[[2]int64]string, error) {
	in := func(col string) string { return col + " IN (SELECT id FROM roster_scope)" }
	q := genSQL(in, false, "") + " UNION " + genSQL(in, true, "")
	rs, err := im.tx.QueryxContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	groups := map[[2]int64][]string{}
	for rs.Next() {
		var u, c int64
		var g string
		if err := rs.Scan(&u, &c, &g); err != nil {
			return nil, err
		}
		if !im.stable[u] || im.gone[u] {
			continue
		}
		k := [2]int64{u, c}
		groups[k] = append(groups[k], g)
	}
	if err := rs.Err(); err != nil {
		return nil, err
	}
	out := make(map[[2]int64]string, len(groups))
	for k, gs := range groups {
		sort.Strings(gs)
		out[k] = strings.Join(gs, "\n")
	}
	return out, nil
}

func (im *importer) rosterEvents(ctx context.Context, before, after map[[2]int64]string) error {
	var added []rosterKey
	keys := make([][2]int64, 0, len(after))
	for k := range after {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, cmpPair)
	for _, k := range keys {
		g, had := before[k]
		if !had {
			added = append(added, rosterKey{k[0], contactKey(k[1])})
		}
		if !had || g != after[k] || im.newName[k[1]] {
			im.events = append(im.events, Event{Kind: EventRosterAdd, UserID: k[0], ContactID: k[1]})
		}
	}
	keys = keys[:0]
	for k := range before {
		if _, ok := after[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, cmpPair)
	for _, k := range keys {
		im.events = append(im.events, Event{Kind: EventRosterRemove, UserID: k[0], ContactID: k[1]})
	}
	// A contact the org structure adds anew comes back even if the user
	// removed it before.
	if len(added) == 0 {
		return nil
	}
	st, err := im.tx.PreparexContext(ctx, im.tx.Rebind(`DELETE FROM roster_items WHERE user_id = ? AND jid = ? AND hidden`))
	if err != nil {
		return err
	}
	defer st.Close()
	for _, a := range added {
		if _, err := st.ExecContext(ctx, a.user, a.jid); err != nil {
			return err
		}
	}
	return nil
}

type rosterKey struct {
	user int64
	jid  string
}

func cmpPair(a, b [2]int64) int {
	if a[0] != b[0] {
		return int(a[0] - b[0])
	}
	return int(a[1] - b[1])
}
