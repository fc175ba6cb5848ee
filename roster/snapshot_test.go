package roster

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
)

// problemsOf parses with parse and returns the problems as lines.
func problemsOf(t *testing.T, err error) []string {
	t.Helper()
	var ie *ImportError
	if !errors.As(err, &ie) {
		t.Fatalf("got %v, want an *ImportError", err)
	}
	var out []string
	for _, p := range ie.Problems {
		out = append(out, p.String())
	}
	return out
}

func wantProblems(t *testing.T, got []string, want ...string) {
	t.Helper()
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || strings.HasPrefix(g, w)
		}
		if !found {
			t.Errorf("missing problem %q in:\n%s", w, strings.Join(got, "\n"))
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d problems, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
}

func TestParseJSONValidation(t *testing.T) {
	const in = `{
	"departments": [
		{"id": "1", "name": "Компания", "parent": null, "head": "1"},
		{"id": "2", "name": "A", "parent": "3"},
		{"id": "3", "name": "B", "parent": "2"},
		{"id": "4", "name": "C", "parent": "404", "head": "777"},
		{"id": "4", "name": " "}
	],
	"employees": [
		{"id": "1", "login": "director", "name": "Ирина", "departments": ["1"]},
		{"id": "1", "login": "Director", "name": "Dup", "departments": ["1"]},
		{"id": 3, "login": "bad login", "name": "", "departments": ["9"], "manager": "55"},
		{"id": "4", "login": "self", "name": "Self", "manager": "4"},
		{"login": "noid", "name": "No Id"}
	]
}`
	_, err := ParseJSON(strings.NewReader(in))
	wantProblems(t, problemsOf(t, err),
		"employees[1] (id 1): id: duplicate id 1 (also employees[0] (id 1))",
		"employees[1] (id 1): login: duplicate login \"director\"",
		"employees[2] (id 3): login: \"bad login\" is not a valid XMPP localpart",
		"employees[2] (id 3): name: empty",
		"employees[2] (id 3): departments: unknown department 9",
		"employees[2] (id 3): manager: unknown employee 55",
		"employees[3] (id 4): manager: an employee cannot be their own manager",
		"employees[4]: id: missing",
		"departments[4] (id 4): id: duplicate department id 4",
		"departments[4] (id 4): name: empty",
		"departments[3] (id 4): parent: unknown department 404",
		"departments[3] (id 4): head: unknown employee 777",
		"departments[1] (id 2): parent: department cycle 2 → 3 → 2",
	)
}

func TestParseJSONSyntax(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"truncated", "{\n\"employees\": [\n{\"id\": \"1\",", "json"},
		{"wrong type", "{\n\"employees\": {\"id\": 1}\n}", "json line 2: employees"},
		{"bad id", `{"employees": [{"id": true, "login": "a", "name": "A"}]}`, "json: id must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseJSON(strings.NewReader(tt.in))
			ps := problemsOf(t, err)
			if len(ps) != 1 || !strings.HasPrefix(ps[0], tt.want) {
				t.Fatalf("got %v, want one problem starting %q", ps, tt.want)
			}
		})
	}
	if _, err := ParseJSON(strings.NewReader(strings.Repeat(" ", MaxImportBytes+1))); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("oversized input: got %v", err)
	}
}

func TestParseJSONAcceptsConformanceLogins(t *testing.T) {
	in := `{"employees": [
		{"id": "1", "login": "4e2pm7er", "name": "A"},
		{"id": "2", "login": "pep-test-tqvqu_pv", "name": "B"},
		{"id": "3", "login": "preappove-a", "name": "C"},
		{"id": "4", "login": "Иванов", "name": "D"},
		{"id": "5", "login": "first.last", "name": "E"}
	]}`
	snap, err := ParseJSON(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if got := snap.Employees[3].Login; got != "иванов" {
		t.Fatalf("login normalized to %q, want lower case", got)
	}
}

func TestParseCSV(t *testing.T) {
	in := "\xef\xbb\xbfid,login,name,email,title,department,manager,active\n" +
		"1,director,Ирина Петрова,ip@example.test,Генеральный директор,Компания,,true\n" +
		"21,ivanov,Иван Иванов,,\"Head of sales, Moscow\",Компания/Отдел продаж,1,\n" +
		"22,petrova,\"Петрова \"\"Маша\"\"\",,,Компания/Отдел продаж/Юг; Компания,,да\n" +
		"23,old,Old Timer,,,Компания,,false\n"
	snap, err := ParseCSV(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Departments) != 3 || snap.Departments[2].ID != "Компания/Отдел продаж/Юг" ||
		snap.Departments[2].Parent != "Компания/Отдел продаж" || snap.Departments[2].Name != "Юг" {
		t.Fatalf("departments: %+v", snap.Departments)
	}
	p := snap.Employees[2]
	if p.Name != `Петрова "Маша"` || len(p.Departments) != 2 || p.Departments[1] != "Компания" || !p.active() {
		t.Fatalf("petrova: %+v", p)
	}
	if snap.Employees[1].Title != "Head of sales, Moscow" || snap.Employees[1].Manager != "1" || snap.Employees[3].active() {
		t.Fatalf("employees: %+v", snap.Employees)
	}
}

func TestParseCSVProblems(t *testing.T) {
	in := "login,id,name,department,manager,active\n" + // columns in another order, some missing
		"a,1,A,X,,\n" +
		"b,2,B,X//Y,9,maybe\n" +
		"c,3\n" +
		"Bad Login,4,D,X,,\n" +
		"e,5,\"E,X,,\n"
	_, err := ParseCSV(strings.NewReader(in))
	wantProblems(t, problemsOf(t, err),
		"line 3 (id 2): department: empty name in path",
		"line 3 (id 2): active: want true or false",
		"line 4: wrong number of fields",
		"line 5 (id 4): login:",
		"line 6: malformed row",
		"line 3 (id 2): manager: unknown employee 9",
	)
	_, err = ParseCSV(strings.NewReader("id,login,whatever\n"))
	wantProblems(t, problemsOf(t, err), "line 1: whatever: unknown column", "line 1: name: required column missing")
	_, err = ParseCSV(strings.NewReader(""))
	wantProblems(t, problemsOf(t, err), "line 1: empty file")
}

func TestImportInvalidAppliesNothing(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s := NewStore(db)
		snap := testSnapshot()
		snap.Departments[1].Parent = "qa"
		snap.Departments[2].Parent = "sales" // sales → qa → dev → sales
		snap.Employees[6].Login = "ann"
		_, err := s.Import(ctx, snap, false)
		wantProblems(t, problemsOf(t, err),
			"employees[6] (id 7): login: duplicate login",
			"departments[1] (id sales): parent: department cycle sales → qa → dev → sales",
		)
		for _, table := range []string{"users", "departments", "user_departments", "events"} {
			if n := count(t, db, table); n != 0 {
				t.Errorf("%s: %d rows after an invalid import", table, n)
			}
		}
	})
}

func TestEffectiveManagers(t *testing.T) {
	snap := &Snapshot{
		Departments: []SnapshotDepartment{
			{ID: "root", Name: "Root", Head: "ceo"},
			{ID: "mid", Name: "Mid", Parent: "root", Head: "ceo"}, // the CEO heads both
			{ID: "low", Name: "Low", Parent: "mid", Head: "lead"},
			{ID: "nohead", Name: "No head", Parent: "root"},
		},
		Employees: []SnapshotEmployee{
			{ID: "ceo", Login: "ceo", Name: "CEO", Departments: []ExtID{"root"}},
			{ID: "lead", Login: "lead", Name: "Lead", Departments: []ExtID{"low"}},
			{ID: "dev", Login: "dev", Name: "Dev", Departments: []ExtID{"low", "nohead"}},
			{ID: "lone", Login: "lone", Name: "Lone", Departments: []ExtID{"nohead"}},
			{ID: "x", Login: "x", Name: "X", Departments: []ExtID{"nohead"}, Manager: "lead"},
			{ID: "y", Login: "y", Name: "Y"},
		},
	}
	if err := snap.Validate(); err != nil {
		t.Fatal(err)
	}
	got := snap.effectiveManagers()
	want := []ExtID{"", "ceo", "lead", "", "lead", ""}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("manager of %s: got %q, want %q", snap.Employees[i].ID, got[i], want[i])
		}
	}
}
