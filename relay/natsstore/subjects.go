package natsstore

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// tok makes s one subject (and KV key) token. Plain ids stay readable; any
// other string is "=" + base64url, which no plain token starts with, so the
// mapping is one to one.
func tok(s string) string {
	if s != "" && plain(s) {
		return s
	}
	return "=" + base64.RawURLEncoding.EncodeToString([]byte(s))
}

func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// untok reverses tok.
func untok(t string) (string, error) {
	if rest, ok := strings.CutPrefix(t, "="); ok {
		b, err := base64.RawURLEncoding.DecodeString(rest)
		if err != nil {
			return "", fmt.Errorf("decode token %q: %w", t, err)
		}
		return string(b), nil
	}
	if t == "" || !plain(t) {
		return "", fmt.Errorf("decode token %q: not a token", t)
	}
	return t, nil
}

const nsLen = 16

// stamp is a time as 16 hex digits: byte order is time order from 1970 on.
func stamp(t time.Time) string {
	ns := t.UnixNano()
	if ns < 0 {
		ns = 0
	}
	return fmt.Sprintf("%016x", uint64(ns))
}

// splitStamped splits an index token into its time and the token after it.
func splitStamped(t string) (time.Time, string, error) {
	if len(t) <= nsLen {
		return time.Time{}, "", errors.New("short index token")
	}
	ns, err := strconv.ParseUint(t[:nsLen], 16, 64)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("index token time: %w", err)
	}
	if ns > math.MaxInt64 {
		return time.Time{}, "", errors.New("index token time out of range")
	}
	return time.Unix(0, int64(ns)).UTC(), t[nsLen:], nil
}

// subjects builds the stream's subjects under one prefix.
type subjects struct{ p string }

func (s subjects) all() string                 { return s.p + ".>" }
func (s subjects) event(org, id string) string { return s.p + ".e." + tok(org) + "." + tok(id) }
func (s subjects) eventPart(org, id string, i int) string {
	return s.p + ".eb." + tok(org) + "." + tok(id) + "." + strconv.Itoa(i)
}
func (s subjects) eventParts(org, id string) string {
	return s.p + ".eb." + tok(org) + "." + tok(id) + ".*"
}
func (s subjects) eventIndexOrg(org string) string {
	return s.p + ".ei." + tok(org) + ".*"
}
func (s subjects) eventIndexAll() string { return s.p + ".ei.*.*" }
func (s subjects) eventIndex(org string, at time.Time, id string) string {
	return s.p + ".ei." + tok(org) + "." + stamp(at) + tok(id)
}
func (s subjects) delivery(org, id string) string { return s.p + ".d." + tok(org) + "." + tok(id) }
func (s subjects) deliveryIndexOrg(org string) string {
	return s.p + ".di." + tok(org) + ".*"
}
func (s subjects) deliveryIndex(org string, at time.Time, id string) string {
	return s.p + ".di." + tok(org) + "." + stamp(at) + tok(id)
}

// Work items of ordered deliveries live under .o., the others under .q.:
// only the latter go through a consumer.
func queueToken(ordered bool) string {
	if ordered {
		return ".o."
	}
	return ".q."
}

func (s subjects) work(org, ep, id string, ordered bool) string {
	return s.p + queueToken(ordered) + tok(org) + "." + tok(ep) + "." + tok(id)
}
func (s subjects) workOf(org, ep string, ordered bool) string {
	return s.p + queueToken(ordered) + tok(org) + "." + tok(ep) + ".*"
}
func (s subjects) workAll(ordered bool) string { return s.p + queueToken(ordered) + ">" }
func (s subjects) lock(org, ep string) string  { return s.p + ".lk." + tok(org) + "." + tok(ep) }

// A retry item is named by its due time, so listing an endpoint's retries
// tells which are due without reading them.
func (s subjects) retry(org, ep string, due time.Time, id string) string {
	return s.p + ".r." + tok(org) + "." + tok(ep) + "." + stamp(due) + tok(id)
}
func (s subjects) retryOf(org, ep string) string {
	return s.p + ".r." + tok(org) + "." + tok(ep) + ".*"
}
func (s subjects) retryAll() string { return s.p + ".r.>" }

// parseRetry reads org, endpoint, due time and delivery id from a retry
// subject.
func (s subjects) parseRetry(subj string) (org, ep string, due time.Time, id string, err error) {
	rest, ok := strings.CutPrefix(subj, s.p+".r.")
	parts := strings.Split(rest, ".")
	if !ok || len(parts) != 3 {
		return "", "", time.Time{}, "", fmt.Errorf("not a retry subject: %q", subj)
	}
	if org, err = untok(parts[0]); err != nil {
		return "", "", time.Time{}, "", err
	}
	if ep, err = untok(parts[1]); err != nil {
		return "", "", time.Time{}, "", err
	}
	due, t, err := splitStamped(parts[2])
	if err != nil {
		return "", "", time.Time{}, "", err
	}
	if id, err = untok(t); err != nil {
		return "", "", time.Time{}, "", err
	}
	return org, ep, due, id, nil
}

// parseWork reads org, endpoint and delivery id from a work subject.
func (s subjects) parseWork(subj string) (org, ep, id string, err error) {
	rest, ok := strings.CutPrefix(subj, s.p+".q.")
	if !ok {
		rest, ok = strings.CutPrefix(subj, s.p+".o.")
	}
	parts := strings.Split(rest, ".")
	if !ok || len(parts) != 3 {
		return "", "", "", fmt.Errorf("not a work subject: %q", subj)
	}
	if org, err = untok(parts[0]); err == nil {
		if ep, err = untok(parts[1]); err == nil {
			id, err = untok(parts[2])
		}
	}
	return org, ep, id, err
}

// The relays' notices to one another are core NATS, never stored: they
// live under "_sidehook.PREFIX", which the stream (PREFIX.>) does not
// capture ("_sidehook" is refused as a prefix), beside the tunnels'
// subjects (relay/natstunnel).
func (s subjects) notices() string { return "_sidehook." + s.p }

// The change feed (ShareChanges): each store shares on feed.{its id}, so
// that the subject says who shared a message and a store drops its own
// without reading it: the connection echoes.
func (s subjects) feed(from string) string { return s.notices() + ".feed." + from }
func (s subjects) feedAll() string         { return s.notices() + ".feed.*" }

// parseFeed reads the id of the store that shared on a feed subject.
func (s subjects) parseFeed(subj string) (from string, err error) {
	from, ok := strings.CutPrefix(subj, s.notices()+".feed.")
	if !ok || from == "" || !plain(from) {
		return "", fmt.Errorf("not a feed subject: %q", subj)
	}
	return from, nil
}

// Notices of work given back, by endpoint (see tellGivenBack).
func (s subjects) back(org, ep string) string {
	return s.notices() + ".back." + tok(org) + "." + tok(ep)
}
func (s subjects) backAll() string { return s.notices() + ".back.*.*" }

// parseBack reads org and endpoint from a notice of work given back.
func (s subjects) parseBack(subj string) (org, ep string, err error) {
	rest, ok := strings.CutPrefix(subj, s.notices()+".back.")
	parts := strings.Split(rest, ".")
	if !ok || len(parts) != 2 {
		return "", "", fmt.Errorf("not a given-back subject: %q", subj)
	}
	if org, err = untok(parts[0]); err == nil {
		ep, err = untok(parts[1])
	}
	return org, ep, err
}

// lastToken is the subject's last token.
func lastToken(subj string) string { return subj[strings.LastIndexByte(subj, '.')+1:] }

// KV keys of the control bucket.
func endpointKey(org, id string) string { return "ep." + tok(org) + "." + tok(id) }
func disabledKey(org, id string) string { return "dis." + tok(org) + "." + tok(id) }
func tokenKey(org string) string        { return "tok." + tok(org) }
func signingKey(name string) string     { return "key." + tok(name) }
