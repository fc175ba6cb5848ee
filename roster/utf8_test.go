package roster

import "testing"

func TestInvalidUTF8(t *testing.T) {
	for _, tc := range []struct {
		name, doc, field string
		line             int
	}{
		{"top-level field", "{\"a\":\"ok\",\"title\":\"x\xffy\"}", "title", 1},
		{"in an array", "{\"employees\":[{\"name\":\"A\"},\n{\"id\":1,\"name\":\"\xc3\x28\"}]}", "employees[1].name", 2},
		{"in a key", "{\"ok\":1,\"k\xfe\":2}", "k\ufffd", 1},
		{"nested array", "{\"users\":[[\"a\"],[\"b\",\"\xff\"]]}", "users[1][1]", 1},
		{"after containers", "{\"a\":{\"b\":[1,2]},\"c\":[],\"d\":\"\xff\"}", "d", 1},
		{"whole document", "\"\xff\"", "", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			field, line, bad := InvalidUTF8([]byte(tc.doc))
			if !bad || field != tc.field || line != tc.line {
				t.Errorf("got %q line %d bad %v, want %q line %d", field, line, bad, tc.field, tc.line)
			}
		})
	}
	if _, _, bad := InvalidUTF8([]byte(`{"name":"Пётр 👍"}`)); bad {
		t.Error("valid UTF-8 reported bad")
	}
}
