package api

import (
	"os"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestOpenAPIMatchesRoutes checks docs/openapi.yaml against the route
// table: every documented path and method is routed, every route is
// documented, and every operation documents its answers.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	b, err := os.ReadFile("../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string                    `yaml:"openapi"`
		Servers []struct{ URL string }    `yaml:"servers"`
		Paths   map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") || len(doc.Servers) != 1 || doc.Servers[0].URL != Prefix {
		t.Fatalf("openapi %q servers %v: want 3.x at %s", doc.OpenAPI, doc.Servers, Prefix)
	}
	methods := map[string]bool{"get": true, "put": true, "post": true, "delete": true, "patch": true}
	var documented []string
	for path, ops := range doc.Paths {
		for m, op := range ops {
			if !methods[m] {
				continue // parameters, summary
			}
			documented = append(documented, strings.ToUpper(m)+" "+Prefix+path)
			o, _ := op.(map[string]any)
			if o["responses"] == nil {
				t.Errorf("%s %s documents no responses", m, path)
			}
		}
	}
	sort.Strings(documented)
	routed := New(nil, nil, nil, Options{}).Routes()
	in := func(list []string, s string) bool {
		for _, x := range list {
			if x == s {
				return true
			}
		}
		return false
	}
	for _, d := range documented {
		if !in(routed, d) {
			t.Errorf("documented but not routed: %s", d)
		}
	}
	for _, r := range routed {
		if !in(documented, r) {
			t.Errorf("routed but not documented in docs/openapi.yaml: %s", r)
		}
	}
	if len(routed) < 10 {
		t.Fatalf("only %d routes: %v", len(routed), routed)
	}
}
