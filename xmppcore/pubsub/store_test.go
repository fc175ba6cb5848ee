package pubsub_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
	"vestnik/xmppcore/pubsub"
)

func TestStore(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s := pubsub.NewStore(db)
		cfg := pubsub.DefaultConfig()
		cfg.MaxItems = 2
		n, err := s.Create(ctx, "svc", "a", cfg, "o@x", 2)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Create(ctx, "svc", "a", cfg, "o@x", 2); !errors.Is(err, pubsub.ErrConflict) {
			t.Fatalf("second create: %v", err)
		}
		if _, err := s.Create(ctx, "svc", "b", cfg, "o@x", 2); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Create(ctx, "svc", "c", cfg, "o@x", 2); !errors.Is(err, pubsub.ErrTooMany) {
			t.Fatalf("third create with limit 2: %v", err)
		}
		if _, err := s.Create(ctx, "other", "c", cfg, "o@x", 2); err != nil {
			t.Fatalf("another service: %v", err)
		}

		// max_items 2: the oldest of three is dropped; republishing an id
		// makes it the newest.
		for _, id := range []string{"1", "2", "1", "3"} {
			if _, err := s.Publish(ctx, n, pubsub.Item{ID: id, Publisher: "o@x", Payload: "<x xmlns='urn:t'>" + id + "</x>"}); err != nil {
				t.Fatal(err)
			}
		}
		items, err := s.Items(ctx, n, nil, 0)
		if err != nil || len(items) != 2 || items[0].ID != "3" || items[1].ID != "1" {
			t.Fatalf("items: %+v %v", items, err)
		}
		if err := s.Retract(ctx, n, "2"); !errors.Is(err, pubsub.ErrNotFound) {
			t.Fatalf("retract dropped item: %v", err)
		}
		if got, _ := s.Items(ctx, n, []string{"1"}, 0); len(got) != 1 || got[0].Payload != "<x xmlns='urn:t'>1</x>" {
			t.Fatalf("item 1: %+v", got)
		}

		// Configure trims at once.
		cfg.MaxItems = 1
		if err := s.Configure(ctx, n, cfg); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Items(ctx, n, nil, 0); len(got) != 1 || got[0].ID != "3" {
			t.Fatalf("after max_items 1: %+v", got)
		}

		if sub, err := s.Subscribe(ctx, n, "u@x/r", "s1"); err != nil || sub != "s1" {
			t.Fatalf("subscribe: %v %v", sub, err)
		}
		if sub, _ := s.Subscribe(ctx, n, "u@x/r", "s2"); sub != "s1" {
			t.Fatalf("resubscribe keeps the subid: %v", sub)
		}
		if subs, err := s.SubscriptionsOf(ctx, "svc", "u@x"); err != nil || len(subs) != 1 || subs[0].Node != "a" {
			t.Fatalf("subscriptions of u@x: %+v %v", subs, err)
		}
		if err := s.SetAffiliation(ctx, n, "p@x", "publisher"); err != nil {
			t.Fatal(err)
		}
		if a, _ := s.AffiliationOf(ctx, n, "p@x"); a != "publisher" {
			t.Fatalf("affiliation: %s", a)
		}
		if a, _ := s.AffiliationOf(ctx, n, "nobody@x"); a != "none" {
			t.Fatalf("no affiliation: %s", a)
		}
		subs, err := s.Delete(ctx, n)
		if err != nil || len(subs) != 1 || subs[0] != "u@x/r" {
			t.Fatalf("delete: %v %v", subs, err)
		}
		if _, err := s.Node(ctx, "svc", "a"); !errors.Is(err, pubsub.ErrNotFound) {
			t.Fatalf("deleted node: %v", err)
		}
		if _, err := s.Delete(ctx, n); !errors.Is(err, pubsub.ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}
	})
}
