package audit

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"gohsm/token/store"
)

// Record is a stored event: its place in its stream, the bytes the chain
// covers (Raw, the encoded Event) and their MAC, and the event decoded.
type Record struct {
	Stream string
	Seq    uint64
	Raw    []byte
	MAC    []byte
	Event  Event
}

// Decode decodes a stored record. A record that does not decode is still
// returned (Event zero) with the error, so that verify can name it.
func Decode(r store.AuditRecord) (Record, error) {
	out := Record{Stream: r.Stream, Seq: r.Seq, Raw: r.Record, MAC: r.MAC}
	if err := json.Unmarshal(r.Record, &out.Event); err != nil {
		return out, fmt.Errorf("audit: %s record %d: %v", r.Stream, r.Seq, err)
	}
	return out, nil
}

// Text renders the record as CloudHSM's audit log shows an event
// (UG-2023:interpreting-audit-logs.md): time, sequence number, reboot
// counter, command type, opcode, session handle, response, log type, and
// the user or the key handles. gohsm's own fields (Actor, Detail) follow
// when set.
func (r Record) Text() string {
	e := r.Event
	var b strings.Builder
	t := time.UnixMicro(e.TimeUS).UTC()
	fmt.Fprintf(&b, "Time: %s.%06d, usecs:%d\n", t.Format("01/02/06 15:04:05"), t.Nanosecond()/1000, e.TimeUS)
	fmt.Fprintf(&b, "Sequence No : 0x%x\n", r.Seq)
	fmt.Fprintf(&b, "Reboot counter : 0x%x\n", e.Reboot)
	fmt.Fprintf(&b, "Command Type(hex) : CN_MGMT_CMD (0x0)\n")
	fmt.Fprintf(&b, "Opcode : %s (0x%x)\n", e.Opcode, uint16(e.Opcode))
	fmt.Fprintf(&b, "Session Handle : 0x%x\n", e.Session)
	fmt.Fprintf(&b, "Response : %d:%s\n", e.Code, e.Response)
	fmt.Fprintf(&b, "Log type : %s (%d)\n", e.LogType, e.LogType)
	switch e.LogType {
	case MGMT_USER_DETAILS_LOG:
		fmt.Fprintf(&b, "User Name : %s\n", e.User)
		fmt.Fprintf(&b, "User Type : %s (%d)\n", e.UserType, e.UserType)
	case MGMT_KEY_DETAILS_LOG:
		fmt.Fprintf(&b, "Priv/Secret Key Handle : %d\n", e.Key)
		fmt.Fprintf(&b, "Public Key Handle : %d\n", e.PublicKey)
	}
	if e.Actor != "" {
		fmt.Fprintf(&b, "Actor : %s\n", e.Actor)
	}
	if e.Detail != "" {
		fmt.Fprintf(&b, "Detail : %s\n", e.Detail)
	}
	return b.String()
}

// Line is a record as one JSON line: what `gohsm audit show --json` prints
// and what a rotation archive holds. Record is the exact bytes the MAC
// covers (a JSON string of the encoded event); Event is the same event
// decoded, with the opcode's and log type's names, for readers.
type Line struct {
	Stream  string          `json:"stream"`
	Seq     uint64          `json:"seq"`
	Opcode  string          `json:"opcode"`
	LogType string          `json:"log_type"`
	Event   json.RawMessage `json:"event"`
	Record  string          `json:"record"`
	MAC     string          `json:"mac"`
}

// Line makes the record's JSON line.
func (r Record) Line() Line {
	ev := json.RawMessage(r.Raw)
	if !json.Valid(r.Raw) {
		ev = json.RawMessage("null")
	}
	return Line{Stream: r.Stream, Seq: r.Seq, Opcode: r.Event.Opcode.String(), LogType: r.Event.LogType.String(),
		Event: ev, Record: string(r.Raw), MAC: hex.EncodeToString(r.MAC)}
}

// WriteLines writes records as JSON lines.
func WriteLines(w io.Writer, recs []Record) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, r := range recs {
		if err := enc.Encode(r.Line()); err != nil {
			return fmt.Errorf("audit: write: %w", err)
		}
	}
	return nil
}

// ReadLines reads JSON lines (a rotation archive) back into records.
func ReadLines(rd io.Reader) ([]Record, error) {
	var out []Record
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	n := 0
	for sc.Scan() {
		n++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var l Line
		if err := json.Unmarshal(line, &l); err != nil {
			return nil, fmt.Errorf("audit: archive line %d: %v", n, err)
		}
		mac, err := hex.DecodeString(l.MAC)
		if err != nil {
			return nil, fmt.Errorf("audit: archive line %d: mac: %v", n, err)
		}
		r, _ := Decode(store.AuditRecord{Stream: l.Stream, Seq: l.Seq, Record: []byte(l.Record), MAC: mac})
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("audit: archive: %v", err)
	}
	return out, nil
}
