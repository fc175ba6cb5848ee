package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strings"

	"vestnik/xmppcore"
)

// componentList is --component: NAME=SECRET pairs, repeatable and
// comma-separated.
type componentList []string

func (l *componentList) String() string { return "" }

func (l *componentList) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

// components reads --component pairs and the lines of --component-file
// (NAME=SECRET, one a line; blank lines and lines starting with # are
// skipped) into name → secret. A name given twice, a pair without '=' or
// an empty secret is an error naming the place.
func components(pairs []string, file string) (map[string]string, error) {
	out := map[string]string{}
	add := func(where, p string) error {
		name, secret, ok := strings.Cut(p, "=")
		name, secret = strings.TrimSpace(name), strings.TrimSpace(secret)
		if !ok || name == "" || secret == "" {
			return fmt.Errorf("serve: %s: %q is not NAME=SECRET", where, redactSecret(p))
		}
		if _, dup := out[name]; dup {
			return fmt.Errorf("serve: %s: component %s given twice", where, name)
		}
		out[name] = secret
		return nil
	}
	for _, p := range pairs {
		if err := add("--component", p); err != nil {
			return nil, err
		}
	}
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("serve: --component-file: %w", err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for n := 1; sc.Scan(); n++ {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			if err := add(fmt.Sprintf("--component-file %s line %d", file, n), line); err != nil {
				return nil, err
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("serve: --component-file: %w", err)
		}
	}
	return out, nil
}

// redactSecret keeps a secret out of an error message.
func redactSecret(p string) string {
	if name, _, ok := strings.Cut(p, "="); ok {
		return name + "=…"
	}
	return p
}

// serveComponents configures the components on x and, when addr is set,
// listens for them (XEP-0114). It returns the listener's error channel
// (nil without a listener).
func serveComponents(x *xmppcore.Server, addr string, comps map[string]string) (<-chan error, error) {
	for name, secret := range comps {
		if err := x.AddExternalComponent(name, secret); err != nil {
			return nil, fmt.Errorf("serve: --component: %w", err)
		}
	}
	if addr == "" {
		if len(comps) > 0 {
			return nil, fmt.Errorf("serve: --component needs --components ADDR to listen on")
		}
		return nil, nil
	}
	if len(comps) == 0 {
		return nil, fmt.Errorf("serve: --components %s: no component configured (--component NAME=SECRET or --component-file)", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("serve: components: %w", err)
	}
	errc := make(chan error, 1)
	go func() { errc <- x.ServeComponents(ln) }()
	return errc, nil
}
