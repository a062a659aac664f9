package audit

import (
	"bytes"
	"testing"

	"gohsm/token/store"
)

// FuzzArchive: an archive file (`gohsm audit verify --archive`) and an
// anchor are input from outside the token: whatever they hold, reading
// and verifying them returns an answer, never a panic or a hang; what
// reads back writes back the same.
func FuzzArchive(f *testing.F) {
	key := bytes.Repeat([]byte{7}, 32)
	var prev []byte
	var recs []Record
	for i := range 3 {
		e := Event{TimeUS: int64(i), Opcode: CN_LOGIN, LogType: MGMT_USER_DETAILS_LOG, User: "u"}
		e.Respond(RespSuccess)
		raw, _ := e.Encode()
		mac := store.ChainMAC(key, store.DefaultStream, uint64(i), prev, raw)
		recs = append(recs, Record{Stream: store.DefaultStream, Seq: uint64(i), Raw: raw, MAC: mac, Event: e})
		prev = mac
	}
	var good bytes.Buffer
	if err := WriteLines(&good, recs); err != nil {
		f.Fatal(err)
	}
	f.Add(good.Bytes(), "2:"+FormatAnchor(store.AuditMark{Seq: 2, MAC: prev})[2:])
	f.Add([]byte("{\"seq\":1}\n\n{"), "x:zz")
	f.Add([]byte(`{"stream":"hsm-0","seq":18446744073709551615,"record":"\u0000","mac":"00"}`), "0x10:00")
	f.Fuzz(func(t *testing.T, archive []byte, anchor string) {
		arch, err := ReadLines(bytes.NewReader(archive))
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := WriteLines(&out, arch); err != nil {
			t.Fatal(err)
		}
		again, err := ReadLines(&out)
		if err != nil || len(again) != len(arch) {
			t.Fatalf("archive does not read back: %v (%d of %d)", err, len(again), len(arch))
		}
		for i := range arch {
			if again[i].Seq != arch[i].Seq || !bytes.Equal(again[i].MAC, arch[i].MAC) ||
				(!bytes.Equal(again[i].Raw, arch[i].Raw) && bytes.Equal(arch[i].Raw, bytes.ToValidUTF8(arch[i].Raw, nil))) {
				t.Fatalf("record %d changed: %q -> %q", i, arch[i].Raw, again[i].Raw)
			}
		}
		c := Chain{Stream: store.DefaultStream, Key: key, Archive: arch, Base: &store.AuditMark{Seq: 2, MAC: prev},
			Head: &store.AuditMark{Seq: 2, MAC: prev}}
		if a, err := ParseAnchor(anchor); err == nil {
			c.Anchors = []store.AuditMark{a}
		}
		_, _ = Verify(c)
		for _, r := range arch {
			_ = r.Text()
		}
	})
}
