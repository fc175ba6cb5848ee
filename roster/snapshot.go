package roster

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"unicode/utf8"

	"mellium.im/xmpp/jid"
)

// Limits on HR import input.
const (
	MaxImportBytes = 64 << 20 // a JSON or CSV file
	MaxDepartments = 100_000
	MaxEmployees   = 500_000
	MaxFieldLen    = 1024 // any single string field
	MaxProblems    = 1000 // problems listed before the rest are only counted
	maxDeptDepth   = 64   // path segments of a CSV department
)

// Snapshot is the whole org structure as the portal sees it (SPEC §3): a
// full snapshot, so an employee missing from it is deactivated.
type Snapshot struct {
	Departments []SnapshotDepartment `json:"departments"`
	Employees   []SnapshotEmployee   `json:"employees"`

	csv bool // places are CSV lines
}

// SnapshotDepartment is a department of the import.
type SnapshotDepartment struct {
	ID     ExtID  `json:"id"`
	Name   string `json:"name"`
	Parent ExtID  `json:"parent"` // "" = root
	Head   ExtID  `json:"head"`   // an employee id; "" = no head

	line int // CSV line that created it
}

// SnapshotEmployee is an employee of the import.
type SnapshotEmployee struct {
	ID          ExtID   `json:"id"`
	Login       string  `json:"login"`
	Name        string  `json:"name"`
	Email       string  `json:"email"`
	Title       string  `json:"title"`
	Departments []ExtID `json:"departments"` // first = primary
	Manager     ExtID   `json:"manager"`     // "" = the default (SPEC §3)
	Active      *bool   `json:"active"`      // nil = true
	Password    string  `json:"password"`    // only for new accounts
	Photo       string  `json:"photo"`       // optional http(s) URL of the photo

	line int // CSV line
}

func (e *SnapshotEmployee) active() bool { return e.Active == nil || *e.Active }

// ExtID is a portal identifier. JSON may give it as a string or a number.
type ExtID string

// UnmarshalJSON accepts a string, a number or null.
func (id *ExtID) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*id = ""
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*id = ExtID(strings.TrimSpace(s))
		return nil
	default:
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return errors.New("id must be a string or a number")
		}
		*id = ExtID(n.String())
		return nil
	}
}

// Problem is one thing wrong with an import, with its place.
type Problem struct {
	Place   string // "employees[3] (id 21)", "line 5 (id 21)", "json"
	Field   string // "login", "manager", …; "" for the whole record
	Message string
}

func (p Problem) String() string {
	if p.Field == "" {
		return p.Place + ": " + p.Message
	}
	return p.Place + ": " + p.Field + ": " + p.Message
}

// ImportError lists every problem of an invalid import; nothing was applied.
type ImportError struct {
	Problems []Problem
	More     int // problems found past MaxProblems
}

func (e *ImportError) Error() string {
	var b strings.Builder
	n := len(e.Problems) + e.More
	fmt.Fprintf(&b, "invalid import: %d problem(s)", n)
	for _, p := range e.Problems {
		b.WriteString("\n")
		b.WriteString(p.String())
	}
	if e.More > 0 {
		fmt.Fprintf(&b, "\n… and %d more", e.More)
	}
	return b.String()
}

type problems struct{ e ImportError }

func (ps *problems) add(place, field, format string, args ...any) {
	if len(ps.e.Problems) >= MaxProblems {
		ps.e.More++
		return
	}
	ps.e.Problems = append(ps.e.Problems, Problem{Place: place, Field: field, Message: fmt.Sprintf(format, args...)})
}

func (ps *problems) err() error {
	if len(ps.e.Problems) == 0 {
		return nil
	}
	e := ps.e
	return &e
}

// readLimited reads r up to MaxImportBytes.
func readLimited(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxImportBytes+1))
	if err != nil {
		return nil, fmt.Errorf("roster: read import: %w", err)
	}
	if len(b) > MaxImportBytes {
		return nil, &ImportError{Problems: []Problem{{Place: "input", Message: fmt.Sprintf("larger than %d MiB", MaxImportBytes>>20)}}}
	}
	return b, nil
}

// ParseJSON reads and validates an import in the JSON format of SPEC §3.
// An invalid one gives an *ImportError listing every problem.
func ParseJSON(r io.Reader) (*Snapshot, error) {
	b, err := readLimited(r)
	if err != nil {
		return nil, err
	}
	if field, line, bad := InvalidUTF8(b); bad {
		return nil, &ImportError{Problems: []Problem{{Place: fmt.Sprintf("json line %d", line), Field: field, Message: NotUTF8}}}
	}
	var snap Snapshot
	if err := json.Unmarshal(b, &snap); err != nil {
		place := "json"
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			place = fmt.Sprintf("json line %d", lineAt(b, se.Offset))
		case errors.As(err, &te):
			place = fmt.Sprintf("json line %d", lineAt(b, te.Offset))
			if te.Field != "" {
				return nil, &ImportError{Problems: []Problem{{Place: place, Field: te.Field, Message: "want " + te.Type.String() + ", got " + te.Value}}}
			}
		}
		return nil, &ImportError{Problems: []Problem{{Place: place, Message: err.Error()}}}
	}
	if err := snap.Validate(); err != nil {
		return nil, err
	}
	return &snap, nil
}

func lineAt(b []byte, off int64) int {
	if off > int64(len(b)) {
		off = int64(len(b))
	}
	return bytes.Count(b[:off], []byte("\n")) + 1
}

// CSV columns (SPEC §3). department is a path "Компания/Отдел продаж";
// several departments may be given separated by ";", the first primary.
var csvColumns = []string{"id", "login", "name", "email", "title", "department", "manager", "active", "photo"}

// ParseCSV reads and validates an import in the CSV format of SPEC §3
// (header id,login,name,email,title,department,manager,active, in any
// order; id, login and name are required). Departments are made from the
// paths, their id being the path itself.
func ParseCSV(r io.Reader) (*Snapshot, error) {
	b, err := readLimited(r)
	if err != nil {
		return nil, err
	}
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	if !utf8.Valid(b) {
		return nil, &ImportError{Problems: []Problem{{Place: "csv", Message: "not UTF-8 text"}}}
	}
	cr := csv.NewReader(bytes.NewReader(b))
	cr.ReuseRecord = false
	var ps problems
	header, err := cr.Read()
	if err != nil {
		if err == io.EOF {
			return nil, &ImportError{Problems: []Problem{{Place: "line 1", Message: "empty file: want a header " + strings.Join(csvColumns, ",")}}}
		}
		return nil, &ImportError{Problems: []Problem{{Place: "line 1", Message: "header: " + csvErr(err)}}}
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		known := false
		for _, c := range csvColumns {
			known = known || c == h
		}
		if !known {
			ps.add("line 1", h, "unknown column (want %s)", strings.Join(csvColumns, ","))
			continue
		}
		if _, dup := col[h]; dup {
			ps.add("line 1", h, "column given twice")
		}
		col[h] = i
	}
	for _, c := range []string{"id", "login", "name"} {
		if _, ok := col[c]; !ok {
			ps.add("line 1", c, "required column missing")
		}
	}
	if err := ps.err(); err != nil {
		return nil, err
	}
	cr.FieldsPerRecord = len(header)
	field := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	snap := &Snapshot{csv: true}
	depts := map[string]bool{}
	for {
		line, _ := cr.FieldPos(0)
		before := cr.InputOffset()
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				line = pe.StartLine
				if pe.Err == csv.ErrFieldCount {
					line = pe.Line
				}
			}
			ps.add(fmt.Sprintf("line %d", line), "", "%s", csvErr(err))
			if cr.InputOffset() == before {
				break // the reader cannot move on
			}
			continue
		}
		line, _ = cr.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if len(snap.Employees) >= MaxEmployees {
			ps.add(fmt.Sprintf("line %d", line), "", "more than %d employees", MaxEmployees)
			break
		}
		e := SnapshotEmployee{
			ID: ExtID(field(rec, "id")), Login: field(rec, "login"), Name: field(rec, "name"),
			Email: field(rec, "email"), Title: field(rec, "title"), Manager: ExtID(field(rec, "manager")), line: line,
			Photo: field(rec, "photo"),
		}
		place := fmt.Sprintf("line %d", line)
		if e.ID != "" {
			place += fmt.Sprintf(" (id %s)", e.ID)
		}
		if a := strings.ToLower(field(rec, "active")); a != "" {
			var v bool
			switch a {
			case "1", "true", "yes", "y", "да":
				v = true
			case "0", "false", "no", "n", "нет":
			default:
				ps.add(place, "active", "want true or false, got %q", a)
			}
			e.Active = &v
		}
		for _, path := range strings.Split(field(rec, "department"), ";") {
			path = strings.TrimSpace(path)
			if path == "" {
				continue
			}
			segs := strings.Split(path, "/")
			if len(segs) > maxDeptDepth {
				ps.add(place, "department", "path deeper than %d levels", maxDeptDepth)
				continue
			}
			ok := true
			for i := range segs {
				segs[i] = strings.TrimSpace(segs[i])
				if segs[i] == "" {
					ps.add(place, "department", "empty name in path %q", path)
					ok = false
					break
				}
			}
			if !ok {
				continue
			}
			parent := ""
			for i := range segs {
				id := strings.Join(segs[:i+1], "/")
				if !depts[id] {
					depts[id] = true
					snap.Departments = append(snap.Departments, SnapshotDepartment{ID: ExtID(id), Name: segs[i], Parent: ExtID(parent), line: line})
				}
				parent = id
			}
			e.Departments = append(e.Departments, ExtID(parent))
		}
		snap.Employees = append(snap.Employees, e)
	}
	if err := snap.validate(&ps); err != nil {
		ie := err.(*ImportError)
		sort.SliceStable(ie.Problems, func(i, j int) bool { return lineOf(ie.Problems[i]) < lineOf(ie.Problems[j]) })
		return nil, ie
	}
	return snap, nil
}

// lineOf is the CSV line number of a problem's place ("line 5 …").
func lineOf(p Problem) int {
	var n int
	fmt.Sscanf(p.Place, "line %d", &n)
	return n
}

func csvErr(err error) string {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		if pe.Err == csv.ErrFieldCount {
			return "wrong number of fields"
		}
		return "malformed row: " + pe.Err.Error()
	}
	return err.Error()
}

// Validate checks the whole snapshot and normalizes logins (lower case,
// PRECIS). It returns an *ImportError listing every problem.
func (snap *Snapshot) Validate() error {
	var ps problems
	return snap.validate(&ps)
}

func (snap *Snapshot) deptPlace(i int) string {
	d := &snap.Departments[i]
	if snap.csv {
		return fmt.Sprintf("line %d (department %s)", d.line, d.ID)
	}
	if d.ID == "" {
		return fmt.Sprintf("departments[%d]", i)
	}
	return fmt.Sprintf("departments[%d] (id %s)", i, d.ID)
}

func (snap *Snapshot) empPlace(i int) string {
	e := &snap.Employees[i]
	var p string
	if snap.csv {
		p = fmt.Sprintf("line %d", e.line)
	} else {
		p = fmt.Sprintf("employees[%d]", i)
	}
	if e.ID != "" {
		p += fmt.Sprintf(" (id %s)", e.ID)
	}
	return p
}

// NormalizeLogin returns the login as a JID localpart (PRECIS
// UsernameCaseMapped: lower case), or an error when it cannot be one.
func NormalizeLogin(login string) (string, error) {
	if login == "" {
		return "", errors.New("empty")
	}
	if len(login) > 1023 {
		return "", errors.New("longer than 1023 bytes")
	}
	j, err := jid.New(login, "example.test", "")
	if err != nil {
		return "", fmt.Errorf("%q is not a valid XMPP localpart: %v", login, err)
	}
	return j.Localpart(), nil
}

func (snap *Snapshot) validate(ps *problems) error {
	if len(snap.Departments) > MaxDepartments {
		ps.add("departments", "", "more than %d departments", MaxDepartments)
		return ps.err()
	}
	if len(snap.Employees) > MaxEmployees {
		ps.add("employees", "", "more than %d employees", MaxEmployees)
		return ps.err()
	}
	long := func(place, field, v string) {
		if len(v) > MaxFieldLen {
			ps.add(place, field, "longer than %d bytes", MaxFieldLen)
		}
	}
	emp := make(map[ExtID]int, len(snap.Employees))
	logins := make(map[string]int, len(snap.Employees))
	for i := range snap.Employees {
		e := &snap.Employees[i]
		place := snap.empPlace(i)
		if e.ID == "" {
			ps.add(place, "id", "missing")
		} else if j, dup := emp[e.ID]; dup {
			ps.add(place, "id", "duplicate id %s (also %s)", e.ID, snap.empPlace(j))
		} else {
			emp[e.ID] = i
		}
		long(place, "id", string(e.ID))
		if l, err := NormalizeLogin(e.Login); err != nil {
			ps.add(place, "login", "%v", err)
		} else {
			e.Login = l
			if j, dup := logins[l]; dup {
				ps.add(place, "login", "duplicate login %q (also %s)", l, snap.empPlace(j))
			} else {
				logins[l] = i
			}
		}
		if strings.TrimSpace(e.Name) == "" {
			ps.add(place, "name", "empty")
		}
		e.Name = strings.TrimSpace(e.Name)
		long(place, "name", e.Name)
		long(place, "email", e.Email)
		long(place, "title", e.Title)
		e.Photo = strings.TrimSpace(e.Photo)
		if err := checkPhotoURL(e.Photo); err != nil {
			ps.add(place, "photo", "%v", err)
		}
		if len(e.Password) > MaxPasswordLen {
			ps.add(place, "password", "longer than %d bytes", MaxPasswordLen)
		}
		if len(e.Departments) > maxDeptDepth {
			ps.add(place, "departments", "more than %d departments", maxDeptDepth)
		}
	}
	dept := make(map[ExtID]int, len(snap.Departments))
	for i := range snap.Departments {
		d := &snap.Departments[i]
		place := snap.deptPlace(i)
		if d.ID == "" {
			ps.add(place, "id", "missing")
		} else if j, dup := dept[d.ID]; dup {
			ps.add(place, "id", "duplicate department id %s (also %s)", d.ID, snap.deptPlace(j))
		} else {
			dept[d.ID] = i
		}
		long(place, "id", string(d.ID))
		d.Name = strings.TrimSpace(d.Name)
		if d.Name == "" {
			ps.add(place, "name", "empty")
		}
		long(place, "name", d.Name)
	}
	for i := range snap.Departments {
		d := &snap.Departments[i]
		if d.Parent != "" {
			if _, ok := dept[d.Parent]; !ok {
				ps.add(snap.deptPlace(i), "parent", "unknown department %s", d.Parent)
			} else if d.Parent == d.ID {
				ps.add(snap.deptPlace(i), "parent", "a department cannot be its own parent")
			}
		}
		if d.Head != "" {
			if _, ok := emp[d.Head]; !ok {
				ps.add(snap.deptPlace(i), "head", "unknown employee %s", d.Head)
			}
		}
	}
	// Cycles: walk up from each department; colour 1 = on the current
	// path, 2 = known to reach a root.
	colour := make([]uint8, len(snap.Departments))
	for i := range snap.Departments {
		var path []int
		j := i
		for j >= 0 && colour[j] == 0 {
			colour[j] = 1
			path = append(path, j)
			p := snap.Departments[j].Parent
			k, ok := dept[p]
			if p == "" || !ok || p == snap.Departments[j].ID {
				j = -1
				break
			}
			j = k
		}
		if j >= 0 && colour[j] == 1 {
			// j is on the current path: the cycle runs from j to the end.
			var ids []string
			start := 0
			for n, k := range path {
				if k == j {
					start = n
				}
			}
			for _, k := range path[start:] {
				ids = append(ids, string(snap.Departments[k].ID))
			}
			ids = append(ids, string(snap.Departments[j].ID))
			ps.add(snap.deptPlace(j), "parent", "department cycle %s", strings.Join(ids, " → "))
		}
		for _, k := range path {
			colour[k] = 2
		}
	}
	for i := range snap.Employees {
		e := &snap.Employees[i]
		place := snap.empPlace(i)
		seen := map[ExtID]bool{}
		for _, d := range e.Departments {
			if _, ok := dept[d]; !ok {
				ps.add(place, "departments", "unknown department %s", d)
			} else if seen[d] {
				ps.add(place, "departments", "department %s given twice", d)
			}
			seen[d] = true
		}
		if e.Manager != "" {
			if _, ok := emp[e.Manager]; !ok {
				ps.add(place, "manager", "unknown employee %s", e.Manager)
			} else if e.Manager == e.ID {
				ps.add(place, "manager", "an employee cannot be their own manager")
			}
		}
	}
	return ps.err()
}

// effectiveManagers returns, per employee index, the ext id of the
// effective manager (SPEC §3): the explicit manager, else the head of the
// first department, or for the head itself the head of the nearest
// ancestor headed by someone else; a department without a head gives no
// default manager.
func (snap *Snapshot) effectiveManagers() []ExtID {
	dept := make(map[ExtID]*SnapshotDepartment, len(snap.Departments))
	for i := range snap.Departments {
		dept[snap.Departments[i].ID] = &snap.Departments[i]
	}
	out := make([]ExtID, len(snap.Employees))
	for i := range snap.Employees {
		e := &snap.Employees[i]
		if e.Manager != "" {
			out[i] = e.Manager
			continue
		}
		if len(e.Departments) == 0 {
			continue
		}
		d := dept[e.Departments[0]]
		for n := 0; d != nil && n <= len(snap.Departments); n++ {
			if d.Head == "" {
				break
			}
			if d.Head != e.ID {
				out[i] = d.Head
				break
			}
			d = dept[d.Parent]
		}
	}
	return out
}

// MaxPhotoURLLen bounds the photo URL of an employee.
const MaxPhotoURLLen = 2048

// checkPhotoURL accepts "" (no photo) or an absolute http or https URL
// with a host and no user name or password in it.
func checkPhotoURL(s string) error {
	if s == "" {
		return nil
	}
	if len(s) > MaxPhotoURLLen {
		return fmt.Errorf("longer than %d bytes", MaxPhotoURLLen)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("want an http or https URL, got %q", s)
	}
	if u.User != nil {
		return fmt.Errorf("the URL must not carry a user name or password")
	}
	return nil
}
