package audit

import (
	"bytes"
	"crypto/hmac"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gohsm/token/store"
)

// Chain is what Verify checks of one stream: the token's key and records,
// where the token's part of the chain starts (Base, after a rotation) and
// ends (Head), and what the operator brings from outside the token: the
// records rotated out (Archive, from `gohsm audit rotate` files) and
// anchors (heads noted earlier with `gohsm audit head`).
type Chain struct {
	Stream  string
	Key     []byte
	Base    *store.AuditMark
	Head    *store.AuditMark
	Records []Record
	Archive []Record
	Anchors []store.AuditMark
}

// Report is what a chain that verifies covers.
type Report struct {
	Stream string `json:"stream"`
	// First and Last are the sequence numbers checked; Count how many.
	First    uint64 `json:"first"`
	Last     uint64 `json:"last"`
	Count    int    `json:"records"`
	Archived int    `json:"archived"` // of which from archives
	// Unchecked is set when the token's records start after a rotation
	// and no archive was given: records before First were not checked.
	Unchecked bool `json:"unchecked_before_first"`
	Anchors   int  `json:"anchors"`
}

// VerifyError names the first record that fails.
type VerifyError struct {
	Stream string
	Seq    uint64
	Reason string
}

func (e *VerifyError) Error() string {
	return fmt.Sprintf("audit: stream %s: record %d (0x%x): %s", e.Stream, e.Seq, e.Seq, e.Reason)
}

// Verify recomputes the chain: every record's MAC from the one before it
// (store.ChainMAC), the sequence without gaps, repeats or reordering from
// 0 (or from the base), the last record being the head (a deleted tail
// shows), and each anchor's record having the anchor's MAC (a chain
// rewritten by someone holding the key shows). It stops at the first bad
// record.
func Verify(c Chain) (Report, error) {
	rep := Report{Stream: c.Stream}
	bad := func(seq uint64, f string, a ...any) (Report, error) {
		return rep, &VerifyError{Stream: c.Stream, Seq: seq, Reason: fmt.Sprintf(f, a...)}
	}
	arch := append([]Record(nil), c.Archive...)
	sort.SliceStable(arch, func(i, j int) bool { return arch[i].Seq < arch[j].Seq })
	// Archives may overlap (two rotations that raced, an archive given
	// twice): a record present twice, byte for byte, counts once; two
	// different records with one number stay, and fail below.
	arch = slices.CompactFunc(arch, func(a, b Record) bool {
		return a.Seq == b.Seq && bytes.Equal(a.Raw, b.Raw) && bytes.Equal(a.MAC, b.MAC)
	})
	var next uint64
	var prev []byte
	all := make([]Record, 0, len(arch)+len(c.Records))
	switch {
	case len(arch) > 0:
		if arch[0].Seq != 0 {
			return bad(0, "missing: the archives start at record %d (give every archive of the stream)", arch[0].Seq)
		}
		last := arch[len(arch)-1]
		if c.Base == nil || last.Seq != c.Base.Seq || !hmac.Equal(last.MAC, c.Base.MAC) {
			if c.Base == nil {
				return bad(last.Seq, "the token has no rotated records, but an archive was given")
			}
			if last.Seq < c.Base.Seq {
				return bad(last.Seq+1, "missing: the archives end at %d, the token's records start after %d", last.Seq, c.Base.Seq)
			}
			return bad(c.Base.Seq, "the archive's record is not the one the token's log continues from")
		}
		all = append(all, arch...)
		rep.Archived = len(arch)
	case c.Base != nil:
		next, prev = c.Base.Seq+1, c.Base.MAC
		rep.Unchecked = true
	}
	rep.First = next
	all = append(all, c.Records...)
	for _, r := range all {
		switch {
		case r.Seq > next:
			return bad(next, "missing (the next record present is %d)", r.Seq)
		case r.Seq < next:
			return bad(r.Seq, "out of order or repeated (expected %d)", next)
		}
		want := store.ChainMAC(c.Key, c.Stream, r.Seq, prev, r.Raw)
		if !hmac.Equal(want, r.MAC) {
			return bad(r.Seq, "MAC does not match: the record was edited, moved, or the one before it was")
		}
		if _, err := Decode(store.AuditRecord{Stream: r.Stream, Seq: r.Seq, Record: r.Raw, MAC: r.MAC}); err != nil {
			return bad(r.Seq, "does not decode: %v", err)
		}
		rep.Count++
		rep.Last = r.Seq
		prev = r.MAC
		next = r.Seq + 1
	}
	var last *store.AuditMark
	switch {
	case len(all) > 0:
		r := all[len(all)-1]
		last = &store.AuditMark{Seq: r.Seq, MAC: r.MAC}
	case c.Base != nil:
		last = c.Base
		rep.Last = c.Base.Seq
	}
	switch {
	case c.Head == nil && last != nil:
		return bad(last.Seq, "the token records no head for the stream (deleted?): a truncation would not show")
	case c.Head != nil && last == nil:
		return bad(0, "missing: the head is record %d but the stream has no records (truncated)", c.Head.Seq)
	case c.Head != nil && last.Seq < c.Head.Seq:
		return bad(last.Seq+1, "missing: the head is record %d, the log ends at %d (truncated)", c.Head.Seq, last.Seq)
	case c.Head != nil && last.Seq > c.Head.Seq:
		return bad(c.Head.Seq+1, "after the head (%d): appended behind the token's back", c.Head.Seq)
	case c.Head != nil && !hmac.Equal(last.MAC, c.Head.MAC):
		return bad(last.Seq, "is not the head the token recorded")
	}
	for _, a := range c.Anchors {
		var found *Record
		for i := range all {
			if all[i].Seq == a.Seq {
				found = &all[i]
				break
			}
		}
		if found == nil {
			if c.Base != nil && a.Seq <= c.Base.Seq {
				if a.Seq == c.Base.Seq && hmac.Equal(a.MAC, c.Base.MAC) {
					rep.Anchors++
					continue
				}
				return bad(a.Seq, "the anchor's record was rotated out: give the archives")
			}
			return bad(a.Seq, "the anchor's record is not in the log (truncated)")
		}
		if !hmac.Equal(found.MAC, a.MAC) {
			return bad(a.Seq, "does not match the anchor: the chain was rewritten up to here")
		}
		rep.Anchors++
	}
	return rep, nil
}

// ParseAnchor parses "SEQ:MAC" (SEQ decimal or 0x hex, MAC hex), as
// `gohsm audit head` prints it.
func ParseAnchor(s string) (store.AuditMark, error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return store.AuditMark{}, fmt.Errorf("audit: anchor %q: want SEQ:MAC", s)
	}
	seq, err := strconv.ParseUint(s[:i], 0, 64)
	if err != nil {
		return store.AuditMark{}, fmt.Errorf("audit: anchor %q: sequence: %v", s, err)
	}
	mac, err := hex.DecodeString(s[i+1:])
	if err != nil || len(mac) == 0 {
		return store.AuditMark{}, fmt.Errorf("audit: anchor %q: MAC is not hex", s)
	}
	return store.AuditMark{Seq: seq, MAC: mac}, nil
}

// FormatAnchor is the inverse of ParseAnchor.
func FormatAnchor(m store.AuditMark) string {
	return fmt.Sprintf("%d:%s", m.Seq, hex.EncodeToString(m.MAC))
}

// Load reads a stream of a store into a Chain, in one snapshot of the
// store (the caller adds archives and anchors).
func Load(st interface {
	AuditChain(string) (store.AuditChain, error)
}, stream string) (Chain, error) {
	c := Chain{Stream: stream}
	sc, err := st.AuditChain(stream)
	if err != nil {
		return c, err
	}
	c.Key, c.Base, c.Head = sc.Key, sc.State.Base, sc.State.Head
	recs := sc.Records
	for _, r := range recs {
		d, _ := Decode(r)
		c.Records = append(c.Records, d)
	}
	return c, nil
}
