package roster

import (
	"strings"
)

// The generated roster (SPEC §4) is one relation gen(u, c, g): user u has
// colleague c in group g. It is the union of four set-based branches:
//
//   - department peers: u and c share department d; g = d's name (a
//     colleague in several shared departments appears in several groups);
//   - u's manager c; g = c's primary department;
//   - u's direct report c; g = c's primary department;
//   - personal contacts (stored in both directions); g = c's primary
//     department;
//
// restricted to active users on both sides. The relation is symmetric in
// its pairs (not in its groups), which Import uses to look only at the
// neighbourhood of what changed.
//
// genBranches lists the branches as (u expression, c expression, FROM/JOIN
// text). The primary department of c is joined as p/pd.
var genBranches = []struct{ u, c, from, g string }{
	{"ud1.user_id", "ud2.user_id", `user_departments ud1
		JOIN user_departments ud2 ON ud2.department_id = ud1.department_id AND ud2.user_id <> ud1.user_id
		JOIN departments pd ON pd.id = ud1.department_id`, "pd.name"},
	{"m.id", "m.manager_id", `users m
		LEFT JOIN user_departments p ON p.user_id = m.manager_id AND p.pos = 0
		LEFT JOIN departments pd ON pd.id = p.department_id`, "COALESCE(pd.name, '')"},
	{"r.manager_id", "r.id", `users r
		LEFT JOIN user_departments p ON p.user_id = r.id AND p.pos = 0
		LEFT JOIN departments pd ON pd.id = p.department_id`, "COALESCE(pd.name, '')"},
	{"pc.user_id", "pc.contact_id", `personal_contacts pc
		LEFT JOIN user_departments p ON p.user_id = pc.contact_id AND p.pos = 0
		LEFT JOIN departments pd ON pd.id = p.department_id`, "COALESCE(pd.name, '')"},
}

// personalReversed is the personal-contacts branch written from the other
// side (rows are stored both ways), so that a filter on c uses the primary
// key.
var personalReversed = struct{ u, c, from, g string }{"pc.contact_id", "pc.user_id", `personal_contacts pc
		LEFT JOIN user_departments p ON p.user_id = pc.user_id AND p.pos = 0
		LEFT JOIN departments pd ON pd.id = p.department_id`, "COALESCE(pd.name, '')"}

// genSQL returns SELECT DISTINCT u, c, g (plus extra columns of cu, the
// contact's users row) over the branches, each filtered by cond applied to
// its u column (onC=false) or c column (onC=true). cond has at most one
// placeholder; the caller repeats its argument len(genBranches) times.
func genSQL(cond func(col string) string, onC bool, extra string) string {
	var b strings.Builder
	b.WriteString("SELECT DISTINCT x.u, x.c, x.g")
	if extra != "" {
		b.WriteString(", " + extra)
	}
	b.WriteString(" FROM (")
	for i, br := range genBranches {
		if onC && i == 3 {
			br = personalReversed
		}
		if i > 0 {
			b.WriteString(" UNION ALL ")
		}
		col := br.u
		if onC {
			col = br.c
		}
		b.WriteString("SELECT " + br.u + " AS u, " + br.c + " AS c, " + br.g + " AS g FROM " + br.from +
			" WHERE " + br.c + " IS NOT NULL AND " + cond(col))
	}
	b.WriteString(`) x JOIN users uu ON uu.id = x.u AND uu.active JOIN users cu ON cu.id = x.c AND cu.active`)
	return b.String()
}
