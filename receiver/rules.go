package receiver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/net/http/httpguts"

	"github.com/sidehook/sidehook/internal/event"
	"github.com/sidehook/sidehook/internal/yamlerr"
)

// Faults a rule can inject instead of an answer.
const (
	// FaultReset resets the TCP connection (RST): the client sees
	// "connection reset by peer".
	FaultReset = "reset"
	// FaultTimeout answers nothing and holds the connection open until the
	// client gives up or the receiver stops.
	FaultTimeout = "timeout"
	// FaultClose closes the connection without answering: the client sees
	// an EOF.
	FaultClose = "close"
)

// Sequence scopes.
const (
	PerGlobal    = "global"
	PerWebhookID = "webhook-id"
)

// RuleIDPrefix starts the ids the receiver gives rules.
const RuleIDPrefix = "rule_"

// maxDelay bounds a rule's delay: a longer one is a typo, and would hold a
// graceful stop for as long.
const maxDelay = time.Hour

// maxPerWebhookID bounds the per-webhook-id sequence positions a rule
// remembers; past it they start again (a test suite never gets near it).
const maxPerWebhookID = 100_000

// Rule scripts the receiver's answer to the requests it matches (SPEC §5).
// Rules are evaluated in order and the first match answers; requests that
// fail verification are answered 401 before any rule is looked at, so a
// rule can never make an unauthenticated request look accepted.
type Rule struct {
	// ID names the rule in captures and in DELETE /_sidehook/rules?id=;
	// one is assigned ("rule_" + ULID) when empty.
	ID      string  `json:"id,omitempty"`
	Match   Match   `json:"match"`
	Respond Respond `json:"respond"`
}

// Match selects requests; every field set must match, an empty one matches
// anything.
type Match struct {
	// Method is compared case-insensitively.
	Method string `json:"method,omitempty"`
	// Path is a glob (see matchGlob): path.Match, plus a final '*' that
	// matches the rest of the path across '/'. It is matched against the
	// path as sent, then decoded (see matchPath): "/a%2Fb" needs the
	// escaped slash, "/café" matches "/caf%C3%A9".
	Path string `json:"path,omitempty"`
	// Event is the capture's event type.
	Event string `json:"event,omitempty"`
	// Headers maps a header name (any case) to the value one of its values
	// must equal exactly; the value "*" only requires the header.
	Headers map[string]string `json:"headers,omitempty"`
	// WebhookID is the exact webhook id: the webhook-id header, else a
	// Svix sender's svix-id.
	WebhookID string `json:"webhook_id,omitempty"`
}

// Respond is how a matched request is answered. One that sets no Status,
// Sequence, Body or Fault gives the answer the receiver gives without a
// rule (a custom-value GET's values, else 200 {"id"}), with its Delay and
// Headers: a custom-value endpoint can answer its values slowly.
type Respond struct {
	// Status is the status sent (default 200); Sequence overrides it.
	Status  int               `json:"status,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    string            `json:"body,omitempty"`
	// Delay waits before answering (or before the fault). The capture is
	// stored before the wait and records the answer chosen: a sender that
	// gives up first never gets it, though the capture says 200.
	Delay time.Duration `json:"delay,omitempty"`
	// Sequence answers its statuses in turn, then repeats the last one:
	// [500, 500, 200] fails twice, then succeeds.
	Sequence []int `json:"sequence,omitempty"`
	// Per scopes the sequence and Times: PerGlobal (default) or
	// PerWebhookID (each webhook-id walks its own sequence and has its
	// own Times, as a relay's retries of one event do: status 503, times
	// 2 fails each event twice). Requests without a webhook-id share one.
	Per string `json:"per,omitempty"`
	// Times limits how often the rule answers (0 = always), per
	// webhook-id with PerWebhookID; after that it no longer matches and
	// later rules get the request. A request the receiver refuses
	// uncaptured (503, its store unavailable) does not count, nor move a
	// sequence on: its sender's retry gets that answer.
	Times int `json:"times,omitempty"`
	// Fault, when set, replaces the answer: FaultReset, FaultTimeout or
	// FaultClose, and Status, Sequence, Headers and Body must be left out.
	// Go's http.Transport resends a GET, HEAD or OPTIONS (or a request
	// with an Idempotency-Key) once on its own when a kept-alive
	// connection is reset or closed before any answer: the receiver
	// captures both, and a Go sender faulted once (Times: 1) sees only the
	// second answer. Fault every attempt, or have the sender dial afresh,
	// to show it the fault.
	Fault string `json:"fault,omitempty"`
}

// MarshalJSON writes the delay as a duration string ("250ms"), the form
// the rules file uses.
func (r Respond) MarshalJSON() ([]byte, error) {
	type plain Respond
	out := struct {
		plain
		Delay string `json:"delay,omitempty"`
	}{plain: plain(r)}
	if r.Delay > 0 {
		out.Delay = r.Delay.String()
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads what MarshalJSON writes: without it a rule listed by
// GET /_sidehook/rules (receiverapi's Rules) would not decode as soon as
// one has a delay.
func (r *Respond) UnmarshalJSON(b []byte) error {
	type plain Respond
	in := struct {
		*plain
		Delay string `json:"delay"`
	}{plain: (*plain)(r)}
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	r.Delay = 0
	if in.Delay != "" {
		d, err := time.ParseDuration(in.Delay)
		if err != nil {
			return fmt.Errorf("respond.delay: %q is not a duration (e.g. 250ms)", in.Delay)
		}
		r.Delay = d
	}
	return nil
}

// The wire forms of a rule, decoded from YAML (which reads JSON too).
type ruleWire struct {
	ID      string      `yaml:"id"`
	Match   matchWire   `yaml:"match"`
	Respond respondWire `yaml:"respond"`
}

type matchWire struct {
	Method    string            `yaml:"method"`
	Path      string            `yaml:"path"`
	Event     string            `yaml:"event"`
	Headers   map[string]string `yaml:"headers"`
	WebhookID string            `yaml:"webhook_id"`
}

type respondWire struct {
	Status   int               `yaml:"status"`
	Headers  map[string]string `yaml:"headers"`
	Body     string            `yaml:"body"`
	Delay    string            `yaml:"delay"`
	Sequence []int             `yaml:"sequence"`
	Per      string            `yaml:"per"`
	Times    int               `yaml:"times"`
	Fault    string            `yaml:"fault"`
}

// known lists the fields of each object of a rule, so a typo ("stauts")
// stops the parse instead of silently matching everything.
var knownRuleFields = map[string][]string{
	"rule":    {"id", "match", "respond"},
	"match":   {"method", "path", "event", "headers", "webhook_id"},
	"respond": {"status", "headers", "body", "delay", "sequence", "per", "times", "fault"},
}

// ParseRules reads a rules file: a JSON or YAML list of rules (a single
// rule object is accepted too). Errors name the rule (1-based) and the
// field. It assigns no ids; the receiver does when it loads them.
func ParseRules(data []byte) ([]Rule, error) {
	rules, _, err := parseRules(data)
	return rules, err
}

// parseRules also reports whether the document was a single object.
func parseRules(data []byte) (rules []Rule, single bool, err error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, false, nil // an empty file: no rules
		}
		return nil, false, fmt.Errorf("invalid rules: %s", yamlerr.Reason(data, err))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, false, errors.New("invalid rules: more than one document")
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	var items []*yaml.Node
	switch root.Kind {
	case yaml.SequenceNode:
		items = root.Content
	case yaml.MappingNode:
		items, single = []*yaml.Node{root}, true
	case yaml.ScalarNode:
		if root.Tag == "!!null" {
			return nil, false, nil
		}
		return nil, false, errors.New("invalid rules: want a list of rules")
	default:
		return nil, false, errors.New("invalid rules: want a list of rules")
	}
	ids := make(map[string]int)
	for i, item := range items {
		r, err := parseRule(item)
		if err != nil {
			return nil, false, fmt.Errorf("rule %d: %w", i+1, err)
		}
		if r.ID != "" {
			if j, dup := ids[r.ID]; dup {
				return nil, false, fmt.Errorf("rule %d: id %q already used by rule %d", i+1, r.ID, j)
			}
			ids[r.ID] = i + 1
		}
		rules = append(rules, r)
	}
	return rules, single, nil
}

func parseRule(n *yaml.Node) (Rule, error) {
	if err := checkFields(n, "rule", ""); err != nil {
		return Rule{}, err
	}
	var w ruleWire
	if err := n.Decode(&w); err != nil {
		return Rule{}, errors.New(yamlerr.Reason(nil, err))
	}
	r := Rule{
		ID: w.ID,
		Match: Match{
			Method: w.Match.Method, Path: w.Match.Path, Event: w.Match.Event,
			Headers: w.Match.Headers, WebhookID: w.Match.WebhookID,
		},
		Respond: Respond{
			Status: w.Respond.Status, Headers: w.Respond.Headers, Body: w.Respond.Body,
			Sequence: w.Respond.Sequence, Per: w.Respond.Per, Times: w.Respond.Times,
			Fault: w.Respond.Fault,
		},
	}
	if w.Respond.Delay != "" {
		d, err := time.ParseDuration(w.Respond.Delay)
		if err != nil {
			return Rule{}, fmt.Errorf("respond.delay: %q is not a duration (e.g. 250ms)", w.Respond.Delay)
		}
		r.Respond.Delay = d
	}
	if err := r.validate(); err != nil {
		return Rule{}, err
	}
	return r, nil
}

// checkFields walks a rule's mapping nodes and refuses unknown keys and
// values of the wrong kind.
func checkFields(n *yaml.Node, kind, at string) error {
	name := kind
	if at != "" {
		name = at
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("%s: want an object", name)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i].Value, n.Content[i+1]
		field := key
		if at != "" {
			field = at + "." + key
		}
		if !contains(knownRuleFields[kind], key) {
			return fmt.Errorf("unknown field %q", field)
		}
		switch {
		case kind == "rule" && (key == "match" || key == "respond"):
			if err := checkFields(val, key, key); err != nil {
				return err
			}
		case kind == "respond" && (key == "status" || key == "times"):
			if err := checkWhole(val, field); err != nil {
				return err
			}
		case kind == "respond" && key == "sequence":
			if val.Kind == yaml.ScalarNode && val.Tag == "!!null" {
				continue
			}
			if val.Kind != yaml.SequenceNode {
				return fmt.Errorf("%s: want a list of statuses, such as [500, 200]", field)
			}
			for j, item := range val.Content {
				if err := checkWhole(item, fmt.Sprintf("%s[%d]", field, j)); err != nil {
					return err
				}
			}
		case key != "headers" && key != "match" && key != "respond":
			// Every other field is a string: the decoder would say so in
			// its own terms ("cannot unmarshal !!seq into string").
			if val.Kind != yaml.ScalarNode {
				return fmt.Errorf("%s: want a string", field)
			}
		case key == "headers":
			if val.Kind == yaml.ScalarNode && val.Tag == "!!null" {
				continue
			}
			if val.Kind != yaml.MappingNode {
				return fmt.Errorf("%s: want an object of header: value", field)
			}
			for j := 0; j+1 < len(val.Content); j += 2 {
				if val.Content[j+1].Kind != yaml.ScalarNode {
					return fmt.Errorf("%s.%s: want a string", field, val.Content[j].Value)
				}
			}
		}
	}
	return nil
}

// checkWhole refuses a fractional number where a whole one is wanted: the
// YAML decoder would truncate it (status 500.5 answering 500, times 1.5
// answering once), silently changing what the rule says. So is one no
// int holds.
// It refuses any other kind too, naming the field, where the decoder
// would say "cannot unmarshal !!str `ok` into int".
func checkWhole(n *yaml.Node, field string) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("%s: want a whole number", field)
	}
	switch n.Tag {
	case "!!int", "!!null":
		return nil
	case "!!float":
		f, err := strconv.ParseFloat(n.Value, 64)
		if err != nil || f != math.Trunc(f) {
			return fmt.Errorf("%s: %s is not a whole number", field, n.Value)
		}
		// Beyond an int the decoder fails in its own words, or clamps
		// (-1e19 read as -9223372036854775808).
		if f < math.MinInt64 || f >= math.MaxInt64 {
			return fmt.Errorf("%s: %s is out of range", field, n.Value)
		}
		return nil
	case "!!str":
		return fmt.Errorf("%s: %q is not a whole number", field, n.Value)
	}
	return fmt.Errorf("%s: %s is not a whole number", field, n.Value)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// validate checks a rule's fields, naming the first bad one, and
// normalises method and header names.
func (r *Rule) validate() error {
	if r.ID != "" && !validRuleID(r.ID) {
		return fmt.Errorf("id: %q: want 1 to 64 of [A-Za-z0-9_.-]", r.ID)
	}
	m := &r.Match
	if err := checkMethod(m.Method); err != nil {
		return fmt.Errorf("match.method: %w", err)
	}
	m.Method = strings.ToUpper(m.Method)
	if err := checkGlob(m.Path); err != nil {
		return fmt.Errorf("match.path: %w", err)
	}
	// Requests under AdminPrefix go to the admin API before any rule is
	// looked at: such a rule would be accepted and never answer.
	if strings.HasPrefix(m.Path, AdminPrefix) {
		return fmt.Errorf("match.path: %q is under %s, the receiver's own API, which no rule answers", m.Path, AdminPrefix)
	}
	if err := checkEvent(m.Event); err != nil {
		return fmt.Errorf("match.event: %w", err)
	}
	if len(m.Headers) > 0 {
		h := make(map[string]string, len(m.Headers))
		for k, v := range m.Headers {
			if !httpguts.ValidHeaderFieldName(k) {
				return fmt.Errorf("match.headers: %q is not a header name", k)
			}
			h[strings.ToLower(k)] = v
		}
		m.Headers = h
	}
	p := &r.Respond
	// A final answer is 200 to 599: a 1xx is informational, and Go's
	// server would send a 200 after it, so a rule meant to fail would pass.
	if p.Status != 0 && (p.Status < 200 || p.Status > 599) {
		return fmt.Errorf("respond.status: %d is not between 200 and 599", p.Status)
	}
	for i, s := range p.Sequence {
		if s < 200 || s > 599 {
			return fmt.Errorf("respond.sequence[%d]: %d is not between 200 and 599", i, s)
		}
	}
	for k, v := range p.Headers {
		if !httpguts.ValidHeaderFieldName(k) {
			return fmt.Errorf("respond.headers: %q is not a header name", k)
		}
		// The receiver frames the body itself: a rule's Content-Length
		// would be replaced, and its Transfer-Encoding sent beside
		// net/http's own, leaving the client an empty or garbled body
		// while the capture shows the rule's.
		if strings.EqualFold(k, "content-length") || strings.EqualFold(k, "transfer-encoding") {
			return fmt.Errorf("respond.headers: %q is set by the receiver to frame the body: leave it out", k)
		}
		// net/http would send a CR or LF as a space: the client would get
		// another value than the rule and its captures show.
		if !httpguts.ValidHeaderFieldValue(v) {
			return fmt.Errorf("respond.headers: the value of %q is not a header value", k)
		}
	}
	if p.Delay < 0 || p.Delay > maxDelay {
		return fmt.Errorf("respond.delay: %v is not between 0 and %v", p.Delay, maxDelay)
	}
	switch p.Per {
	case "", PerGlobal, PerWebhookID:
	default:
		return fmt.Errorf("respond.per: %q: want %q or %q", p.Per, PerGlobal, PerWebhookID)
	}
	if p.Times < 0 {
		return fmt.Errorf("respond.times: %d is negative", p.Times)
	}
	switch p.Fault {
	case "", FaultReset, FaultTimeout, FaultClose:
	default:
		return fmt.Errorf("respond.fault: %q: want %q, %q or %q", p.Fault, FaultReset, FaultTimeout, FaultClose)
	}
	// A fault sends no answer: a status or body beside it would never be
	// sent, and a test reading the rule would expect it.
	if p.Fault != "" {
		for _, f := range []struct {
			name string
			set  bool
		}{{"status", p.Status != 0}, {"sequence", len(p.Sequence) > 0}, {"headers", len(p.Headers) > 0}, {"body", p.Body != ""}} {
			if f.set {
				return fmt.Errorf("respond.%s: a rule with fault %q sends no answer; leave %s out", f.name, p.Fault, f.name)
			}
		}
	}
	return nil
}

func validRuleID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// ReadRulesFile reads and parses a rules file; errors name the file.
func ReadRulesFile(path string) ([]Rule, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	rules, err := ParseRules(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rules, nil
}

// request is what rules match on.
type ruleInput struct {
	method string
	path   string
	event  string
	header http.Header
	// host is the request's Host, matched as a "host" header: the
	// capture records it so, while net/http keeps it out of header.
	host      string
	webhookID string
}

// answer is the outcome of matching: what to send.
type answer struct {
	// own is false when the rule sets no status, sequence, body or
	// fault: the receiver's default answer goes, delayed and with the
	// rule's headers.
	own     bool
	rule    string
	status  int
	headers map[string]string
	body    string
	delay   time.Duration
	fault   string
	use     ruleUse
}

// ruleUse is what one match took from a rule's counters. match takes it
// at once, under the lock, so two requests in flight never share a rule's
// last use; a request the receiver then fails to capture gives it back
// (release), since its sender will retry and the retry is owed the same
// answer.
type ruleUse struct {
	state *ruleState // nil: no rule answered
	// per says a webhook-id's position was taken, in perWID[wid]; seq
	// that a global sequence position was, in global.
	seq, per bool
	wid      string
}

type ruleState struct {
	Rule
	used   int
	global int
	perWID map[string]int
}

// ruleSet holds the live rules and their counters. Its mutex is held only
// for matching, which is all in memory.
type ruleSet struct {
	mu      sync.Mutex
	initial []Rule // what reset restores: the file's rules
	rules   []*ruleState
	now     func() time.Time
}

// CheckRules reports the first of rules that New, SetRules or AddRules
// would refuse, as "rule N: field: why" numbered from 1 (two rules of one
// id included), so a caller that gathers rules before New (receivertest's
// options) can say which of its own it refuses.
func CheckRules(rules ...Rule) error {
	_, err := (&ruleSet{now: time.Now}).prepare(rules, nil)
	return err
}

func newRuleSet(initial []Rule, now func() time.Time) (*ruleSet, error) {
	rs := &ruleSet{now: now}
	withIDs, err := rs.prepare(initial, nil)
	if err != nil {
		return nil, err
	}
	rs.initial = withIDs
	rs.reset()
	return rs, nil
}

// prepare validates rules and assigns ids, refusing ids already in use.
func (rs *ruleSet) prepare(rules []Rule, taken map[string]bool) ([]Rule, error) {
	out := make([]Rule, len(rules))
	seen := make(map[string]bool)
	for i, r := range rules {
		r.Match.Headers = cloneMap(r.Match.Headers)
		r.Respond.Headers = cloneMap(r.Respond.Headers)
		r.Respond.Sequence = append([]int(nil), r.Respond.Sequence...)
		if err := r.validate(); err != nil {
			return nil, fmt.Errorf("rule %d: %w", i+1, err)
		}
		if r.ID == "" {
			r.ID = event.NewID(RuleIDPrefix, rs.now())
		}
		if seen[r.ID] || taken[r.ID] {
			return nil, fmt.Errorf("rule %d: id %q already in use", i+1, r.ID)
		}
		seen[r.ID] = true
		out[i] = r
	}
	return out, nil
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// reset restores the initial rules with fresh counters.
func (rs *ruleSet) reset() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.rules = rs.rules[:0]
	for _, r := range rs.initial {
		rs.rules = append(rs.rules, &ruleState{Rule: r})
	}
}

// set replaces every rule.
func (rs *ruleSet) set(rules []Rule) ([]Rule, error) {
	prepared, err := rs.prepare(rules, nil)
	if err != nil {
		return nil, err
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.rules = rs.rules[:0]
	for _, r := range prepared {
		rs.rules = append(rs.rules, &ruleState{Rule: r})
	}
	return prepared, nil
}

// add appends rules after the existing ones.
func (rs *ruleSet) add(rules []Rule) ([]Rule, error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	taken := make(map[string]bool, len(rs.rules))
	for _, r := range rs.rules {
		taken[r.ID] = true
	}
	prepared, err := rs.prepare(rules, taken)
	if err != nil {
		return nil, err
	}
	for _, r := range prepared {
		rs.rules = append(rs.rules, &ruleState{Rule: r})
	}
	return prepared, nil
}

// remove deletes the rule with that id, or every rule when id is "".
func (rs *ruleSet) remove(id string) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if id == "" {
		rs.rules = rs.rules[:0]
		return true
	}
	for i, r := range rs.rules {
		if r.ID == id {
			rs.rules = append(rs.rules[:i], rs.rules[i+1:]...)
			return true
		}
	}
	return false
}

// list returns a copy of the live rules.
func (rs *ruleSet) list() []Rule {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	out := make([]Rule, len(rs.rules))
	for i, r := range rs.rules {
		out[i] = r.Rule
	}
	return out
}

// match finds the first rule for in, counts the use and returns its
// answer.
func (rs *ruleSet) match(in ruleInput) (answer, bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for _, r := range rs.rules {
		p := &r.Respond
		per := p.Per == PerWebhookID
		// Per webhook-id, a webhook-id's uses are its position in the
		// rule: times counts them, as the sequence does.
		used := r.used
		if per {
			used = r.perWID[in.webhookID]
		}
		if p.Times > 0 && used >= p.Times {
			continue
		}
		if !r.matches(in) {
			continue
		}
		r.used++
		a := answer{rule: r.ID, status: p.Status, headers: p.Headers, body: p.Body, delay: p.Delay, fault: p.Fault,
			own: p.Status != 0 || len(p.Sequence) > 0 || p.Body != "" || p.Fault != ""}
		a.use.state = r
		if a.status == 0 {
			a.status = http.StatusOK
		}
		var n int
		switch {
		case per:
			if r.perWID == nil || len(r.perWID) >= maxPerWebhookID {
				r.perWID = make(map[string]int)
			}
			n = r.perWID[in.webhookID]
			r.perWID[in.webhookID] = n + 1
			a.use.per, a.use.wid = true, in.webhookID
		case len(p.Sequence) > 0:
			n = r.global
			r.global++
			a.use.seq = true
		}
		if len(p.Sequence) > 0 {
			a.status = p.Sequence[min(n, len(p.Sequence)-1)]
		}
		return a, true
	}
	return answer{}, false
}

// release gives back what a match took, for a request that was refused
// and not captured. A rule replaced, removed or reset since then keeps its
// fresh counters: u points at the state it was taken from, which is no
// longer live. A sequence position is a count, not a slot: when requests
// overlap, the next one is answered from the latest position taken, which
// may be another request's rather than the refused one's (the same answer
// in a sequence such as [500, 500, 200]).
func (rs *ruleSet) release(u ruleUse) {
	r := u.state
	if r == nil {
		return
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if r.used > 0 {
		r.used--
	}
	switch {
	case u.per:
		// A map started afresh (maxPerWebhookID) no longer holds the
		// position: there is nothing to give back.
		if n := r.perWID[u.wid]; n > 1 {
			r.perWID[u.wid] = n - 1
		} else {
			delete(r.perWID, u.wid)
		}
	case u.seq && r.global > 0:
		r.global--
	}
}

func (r *ruleState) matches(in ruleInput) bool {
	m := &r.Match
	if m.Method != "" && !strings.EqualFold(m.Method, in.method) {
		return false
	}
	if m.Event != "" && m.Event != in.event {
		return false
	}
	if m.WebhookID != "" && m.WebhookID != in.webhookID {
		return false
	}
	if !matchPath(m.Path, in.path) {
		return false
	}
	for name, want := range m.Headers {
		vals := in.header.Values(name)
		if name == "host" && in.host != "" {
			vals = []string{in.host}
		}
		if want == "*" && len(vals) > 0 {
			continue
		}
		found := false
		for _, v := range vals {
			if v == want {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
