// Command vestnik-archivegen fills a Vestnik archive with realistic personal
// and chat messages, then measures the archive on it: the latest page of a
// conversation, a page deep in history, full-text search across one user's
// archive, and write throughput while queries run.
//
//	go run ./cmd/vestnik-archivegen --db sqlite:/tmp/arch.db --messages 1000000
//	go run ./cmd/vestnik-archivegen --db sqlite:/tmp/arch.db --generate=false   # measure only
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations"
	"vestnik/xmppcore/mam"
)

type config struct {
	db        string
	messages  int
	users     int
	chats     int
	chatShare float64
	batch     int
	generate  bool
	measure   bool
	samples   int
	writeFor  time.Duration
	readers   int
	writers   int
	seed      uint64
}

func main() {
	var c config
	flag.StringVar(&c.db, "db", "sqlite:./data/archivegen.db", "database URL (sqlite:PATH or postgres://…)")
	flag.IntVar(&c.messages, "messages", 1_000_000, "messages to generate")
	flag.IntVar(&c.users, "users", 2000, "employees")
	flag.IntVar(&c.chats, "chats", 200, "group chats")
	flag.Float64Var(&c.chatShare, "chat-share", 0.4, "share of chat messages")
	flag.IntVar(&c.batch, "batch", 20000, "messages per transaction")
	flag.BoolVar(&c.generate, "generate", true, "generate messages (false: measure an existing archive)")
	flag.BoolVar(&c.measure, "measure", true, "measure after generating")
	flag.IntVar(&c.samples, "samples", 1000, "queries per measurement")
	flag.DurationVar(&c.writeFor, "write-for", 10*time.Second, "duration of the write-throughput measurement")
	flag.IntVar(&c.readers, "readers", 2, "goroutines paging conversations during the write measurement")
	flag.IntVar(&c.writers, "writers", 64, "goroutines appending during the write measurement")
	flag.Uint64Var(&c.seed, "seed", 1, "random seed")
	flag.Parse()
	if err := run(context.Background(), c); err != nil {
		fmt.Fprintln(os.Stderr, "archivegen:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config) error {
	db, err := migrations.Open(ctx, c.db)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := migrations.Up(ctx, db); err != nil {
		return err
	}
	s := mam.NewStore(db)
	g := newGen(c)
	if c.generate {
		if err := g.generate(ctx, db, s); err != nil {
			return err
		}
	}
	if c.measure {
		return measure(ctx, db, s, c)
	}
	return nil
}

// Vocabulary of the generated bodies: everyday office Russian and English.
var (
	ruWords = strings.Fields(`привет добрый день коллеги отчёт отчёты продажи продажам клиент клиенты договор договора
		встреча встречу завтра сегодня вчера понедельник пятница проект проекта задача задачи срок сроки бюджет
		презентация презентацию документ документы сообщение сообщения письмо письма звонок созвон совещание
		вопрос вопросы ответ спасибо пожалуйста согласовать согласовали подписать подписали отправил отправила
		получил получила посмотри посмотрите исправить исправил ошибка ошибки сервер сервера релиз версия
		отпуск командировка счёт счета оплата оплату склад поставка поставки цена цены скидка менеджер
		директор отдел бухгалтерия кадры юристы маркетинг план планы квартал года итоги результат результаты
		хорошо отлично понял поняла сделаю сделано готово скоро позже обсудим обсудить напомни напомню`)
	enWords = strings.Fields(`hello team report reports sales customer contract meeting tomorrow today yesterday project
		task deadline budget presentation document message call review release version server error fix fixed
		invoice payment delivery price discount manager quarter results plan thanks please agreed sent received
		check update draft final approved pending schedule`)
	emoji = []string{"", "", "", " :)", " 👍", " !", "?"}
)

// Topic words: a large vocabulary (project names, clients, products…)
// with Zipf frequencies, as in real text; made from syllables.
var (
	ruSyll = strings.Fields("ка ро ми та лен вор пол сте на ви ду бра гор зе лу фи мо нир ша тов ель ан кус пре")
	enSyll = strings.Fields("ka ro mi ta len vor pol ste na vi du bra gor ze lu fi mo nir sha tov el an kus pre")
)

const topicWords = 30000

func topicVocabulary(seed uint64) []string {
	r := rand.New(rand.NewPCG(seed, 3))
	out := make([]string, topicWords)
	seen := map[string]bool{}
	for i := range out {
		for {
			syll := ruSyll
			if i%4 == 3 {
				syll = enSyll
			}
			var b strings.Builder
			for n := 2 + r.IntN(3); n > 0; n-- {
				b.WriteString(syll[r.IntN(len(syll))])
			}
			if w := b.String(); !seen[w] {
				seen[w] = true
				out[i] = w
				break
			}
		}
	}
	return out
}

type gen struct {
	c        config
	r        *rand.Rand
	topics   []string
	zipfT    *rand.Zipf
	contacts [][]int64 // per user (index = id-1): frequent contacts
	members  [][]int64 // per chat (index = id-1)
	zipfU    *rand.Zipf
}

func newGen(c config) *gen {
	r := rand.New(rand.NewPCG(c.seed, 42))
	g := &gen{c: c, r: r}
	g.zipfU = rand.NewZipf(r, 1.1, 1, uint64(c.users-1))
	g.topics = topicVocabulary(c.seed)
	g.zipfT = rand.NewZipf(r, 1.07, 2, topicWords-1)
	g.contacts = make([][]int64, c.users)
	for u := range g.contacts {
		n := 5 + r.IntN(25)
		for i := 0; i < n; i++ {
			// Colleagues cluster: neighbours by id are the department.
			v := int64(u+1) + int64(r.IntN(60)) - 30
			if r.IntN(4) == 0 {
				v = int64(1 + r.IntN(c.users))
			}
			if v >= 1 && v <= int64(c.users) && v != int64(u+1) {
				g.contacts[u] = append(g.contacts[u], v)
			}
		}
		if len(g.contacts[u]) == 0 {
			g.contacts[u] = append(g.contacts[u], int64(u%c.users+1)%int64(c.users)+1)
		}
	}
	g.members = make([][]int64, c.chats)
	for ch := range g.members {
		n := 5 + r.IntN(60)
		base := r.IntN(c.users)
		seen := map[int64]bool{}
		for i := 0; i < n; i++ {
			v := int64((base+r.IntN(120))%c.users + 1)
			if !seen[v] {
				seen[v] = true
				g.members[ch] = append(g.members[ch], v)
			}
		}
	}
	return g
}

func (g *gen) body() string {
	n := 3 + g.r.IntN(14)
	words := ruWords
	if g.r.IntN(4) == 0 {
		words = enWords
	}
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(' ')
		}
		w := words[g.r.IntN(len(words))]
		if g.r.IntN(4) == 0 {
			w = g.topics[g.zipfT.Uint64()]
		}
		if i == 0 {
			w = strings.ToUpper(w[:1]) + w[1:]
			if r := []rune(words[g.r.IntN(len(words))]); len(r) > 0 {
				w = strings.ToUpper(string(r[0])) + string(r[1:])
			}
		}
		b.WriteString(w)
	}
	b.WriteString(emoji[g.r.IntN(len(emoji))])
	return b.String()
}

// user picks an active user: a few are far busier than others.
func (g *gen) user() int64 { return int64(g.zipfU.Uint64()) + 1 }

func (g *gen) message(t time.Time) mam.Message {
	if g.r.Float64() < g.c.chatShare && g.c.chats > 0 {
		ch := g.r.IntN(len(g.members))
		mem := g.members[ch]
		from := mem[g.r.IntN(len(mem))]
		if g.r.IntN(200) == 0 {
			return mam.Message{Kind: mam.KindSystem, ChatID: int64(ch + 1), Body: "Участник присоединился к чату", CreatedAt: t}
		}
		return mam.Message{Kind: mam.KindGroupchat, ChatID: int64(ch + 1), FromID: from, Body: g.body(), CreatedAt: t}
	}
	from := g.user()
	cs := g.contacts[from-1]
	to := cs[min(int(g.r.ExpFloat64()*3), len(cs)-1)]
	if g.r.IntN(2) == 0 {
		from, to = to, from
	}
	return mam.Message{Kind: mam.KindChat, FromID: from, ToID: to, Body: g.body(), FromResource: "web", CreatedAt: t}
}

func (g *gen) generate(ctx context.Context, db *sqlx.DB, s *mam.Store) error {
	start := time.Now()
	if err := g.people(ctx, db); err != nil {
		return err
	}
	// Two years of history up to now, evenly spread.
	span := 2 * 365 * 24 * time.Hour
	t0 := time.Now().Add(-span)
	step := span / time.Duration(g.c.messages+1)
	done := 0
	for done < g.c.messages {
		n := min(g.c.batch, g.c.messages-done)
		batch := make([]mam.Message, n)
		for i := range batch {
			batch[i] = g.message(t0.Add(time.Duration(done+i) * step))
		}
		if err := s.Bulk(ctx, batch); err != nil {
			return err
		}
		done += n
		if done%200000 < g.c.batch || done == g.c.messages {
			el := time.Since(start)
			fmt.Printf("generated %d messages in %v (%.0f msgs/s)\n", done, el.Round(time.Millisecond), float64(done)/el.Seconds())
		}
	}
	// As after any bulk load: statistics, and on PostgreSQL the
	// visibility map and hint bits (else first reads write every page).
	analyze := `ANALYZE`
	if db.DriverName() == migrations.Postgres {
		analyze = `VACUUM ANALYZE messages`
	}
	if _, err := db.ExecContext(ctx, analyze); err != nil {
		return err
	}
	fmt.Printf("generation done: %d messages in %v\n", g.c.messages, time.Since(start).Round(time.Millisecond))
	return nil
}

// people creates users, chats and full-history memberships.
func (g *gen) people(ctx context.Context, db *sqlx.DB) error {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for u := 1; u <= g.c.users; u++ {
		if _, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO users (id, ext_id, login, name, created_at, updated_at)
			VALUES (?, ?, ?, ?, 0, 0) ON CONFLICT DO NOTHING`), u, fmt.Sprintf("gen%d", u), fmt.Sprintf("user%d", u), fmt.Sprintf("Сотрудник %d", u)); err != nil {
			return err
		}
	}
	for ch, mem := range g.members {
		id := ch + 1
		if _, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO chats (id, room, title, color, type, owner_id, created_at, updated_at)
			VALUES (?, ?, ?, 'GRAY', 'open', ?, 0, 0) ON CONFLICT DO NOTHING`), id, fmt.Sprintf("genchat%d", id), fmt.Sprintf("Чат %d", id), mem[0]); err != nil {
			return err
		}
		for _, u := range mem {
			if _, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO chat_periods (chat_id, user_id, from_id, to_id) VALUES (?, ?, 1, NULL)
				ON CONFLICT DO NOTHING`), id, u); err != nil {
				return err
			}
		}
	}
	return tx.Commit()
}

// pairStat is a conversation and its size.
type pairStat struct {
	Lo    int64 `db:"pair_lo"`
	Hi    int64 `db:"pair_hi"`
	N     int64 `db:"n"`
	MinID int64 `db:"min_id"`
	MaxID int64 `db:"max_id"`
}

func measure(ctx context.Context, db *sqlx.DB, s *mam.Store, c config) error {
	var total int64
	if err := db.GetContext(ctx, &total, `SELECT COUNT(*) FROM messages`); err != nil {
		return err
	}
	// The 50 biggest conversations: real users page through long ones.
	var pairs []pairStat
	if err := db.SelectContext(ctx, &pairs, `SELECT pair_lo, pair_hi, COUNT(*) AS n, MIN(id) AS min_id, MAX(id) AS max_id
		FROM messages WHERE pair_lo IS NOT NULL GROUP BY pair_lo, pair_hi ORDER BY n DESC LIMIT 50`); err != nil {
		return err
	}
	if len(pairs) == 0 {
		return fmt.Errorf("no conversations in the archive")
	}
	fmt.Printf("archive: %d messages (%s); biggest conversation %d messages, 50th %d\n",
		total, db.DriverName(), pairs[0].N, pairs[len(pairs)-1].N)
	r := rand.New(rand.NewPCG(c.seed, 7))

	latest := timeIt(c.samples, func(i int) error {
		p := pairs[r.IntN(len(pairs))]
		_, err := s.Query(ctx, mam.Query{Viewer: p.Lo, With: p.Hi, Limit: 50, Reverse: true})
		return err
	})
	if latest.err != nil {
		return latest.err
	}
	fmt.Println("latest page of a conversation (50 messages):", latest)

	deep := timeIt(c.samples, func(i int) error {
		p := pairs[r.IntN(len(pairs))]
		before := p.MinID + (p.MaxID-p.MinID)/10 // 90% back in history
		_, err := s.Query(ctx, mam.Query{Viewer: p.Hi, With: p.Lo, Limit: 50, Reverse: true, BeforeID: before})
		return err
	})
	if deep.err != nil {
		return deep.err
	}
	fmt.Println("page deep in history (50 messages, 90% back):", deep)

	// Searches by the busiest users (those of the biggest conversations):
	// topic words drawn with the same Zipf law as the text (what people
	// look for), and the most common everyday words (the worst case).
	words := append(slices.Clone(ruWords), enWords...)
	gq := newGen(c)
	nsearch := max(c.samples/5, 50)
	for _, kind := range []string{"topic words", "common words"} {
		hitsTotal := 0
		st := timeIt(nsearch, func(i int) error {
			p := pairs[r.IntN(len(pairs))]
			var q string
			if kind == "topic words" {
				q = gq.topics[gq.zipfT.Uint64()]
				if i%3 == 0 {
					q += " " + words[r.IntN(len(words))]
				}
			} else {
				q = words[r.IntN(len(words))]
				if i%2 == 0 {
					q += " " + words[r.IntN(len(words))]
				}
			}
			hits, err := s.Search(ctx, p.Lo, q, mam.SearchOptions{Limit: 20})
			hitsTotal += len(hits)
			return err
		})
		if st.err != nil {
			return st.err
		}
		fmt.Printf("full-text search across one user's archive, %s (top 20, %.1f hits avg): %v\n", kind, float64(hitsTotal)/float64(nsearch), st)
	}

	// Writes while queries run.
	ctx2, cancel := context.WithTimeout(ctx, c.writeFor)
	defer cancel()
	var wg sync.WaitGroup
	var writes atomic.Int64
	var werr atomic.Value
	g := newGen(c)
	var gmu sync.Mutex
	for w := 0; w < c.writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx2.Err() == nil {
				gmu.Lock()
				m := g.message(time.Now())
				gmu.Unlock()
				m.CreatedAt = time.Time{}
				if _, err := s.Append(context.Background(), &m); err != nil {
					werr.Store(err)
					return
				}
				writes.Add(1)
			}
		}()
	}
	var qmu sync.Mutex
	var qlat []time.Duration
	for w := 0; w < c.readers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rr := rand.New(rand.NewPCG(uint64(w), 9))
			for ctx2.Err() == nil {
				p := pairs[rr.IntN(len(pairs))]
				t := time.Now()
				if _, err := s.Query(context.Background(), mam.Query{Viewer: p.Lo, With: p.Hi, Limit: 50, Reverse: true}); err != nil {
					werr.Store(err)
					return
				}
				d := time.Since(t)
				qmu.Lock()
				qlat = append(qlat, d)
				qmu.Unlock()
			}
		}()
	}
	begin := time.Now()
	wg.Wait()
	el := time.Since(begin)
	if err, _ := werr.Load().(error); err != nil {
		return err
	}
	fmt.Printf("writes while %d readers page: %.0f msgs/s (%d writers, %v); reader latency %v\n",
		c.readers, float64(writes.Load())/el.Seconds(), c.writers, el.Round(time.Millisecond), summarize(qlat, nil))
	return nil
}

type stats struct {
	n                  int
	p50, p95, p99, max time.Duration
	err                error
}

func (s stats) String() string {
	return fmt.Sprintf("n=%d p50=%v p95=%v p99=%v max=%v", s.n, s.p50.Round(time.Microsecond), s.p95.Round(time.Microsecond),
		s.p99.Round(time.Microsecond), s.max.Round(time.Microsecond))
}

func timeIt(n int, f func(i int) error) stats {
	lat := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		t := time.Now()
		if err := f(i); err != nil {
			return stats{err: err}
		}
		lat = append(lat, time.Since(t))
	}
	return summarize(lat, nil)
}

func summarize(lat []time.Duration, err error) stats {
	if len(lat) == 0 {
		return stats{err: err}
	}
	slices.Sort(lat)
	at := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	return stats{n: len(lat), p50: at(0.50), p95: at(0.95), p99: at(0.99), max: lat[len(lat)-1], err: err}
}
