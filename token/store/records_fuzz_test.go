package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"gohsm/internal/ck"
)

// The store's rows are parsed back by Scan into Go types; a token file is
// input like any other (a damaged disk, a hand-edited file, another
// version). These targets write rows through the API and, raw, through SQL
// with values the API would never write, then read them back.

// fuzzStore is one store per fuzzing process, with a token, crypto officer
// "admin" and crypto user "alice".
func fuzzStore(f *testing.F) *sqliteStore {
	f.Helper()
	s, err := Open(f.TempDir(), Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	if err := s.InitToken(TokenRecord{Label: "fuzz", SerialNumber: "0123456789abcdef"}, user("admin", RoleCO)); err != nil {
		f.Fatal(err)
	}
	if err := s.CreateUser(user("alice", RoleCU)); err != nil {
		f.Fatal(err)
	}
	return s.(*sqliteStore)
}

// FuzzUserRecord: a user row written through CreateUser reads back equal;
// one whose columns were overwritten with arbitrary SQL values (negative,
// huge, text, NULL-free blobs) reads back or fails with an error, and what
// the token derives from it (KDF check, token-key unwrap) never panics.
// Seeds: testdata/fuzz/FuzzUserRecord.
func FuzzUserRecord(f *testing.F) {
	s := fuzzStore(f)
	f.Add("bob", int64(2), uint32(1), uint32(64), uint8(1), []byte("salt"), []byte("wrapped"), int64(0), int64(0), "kdf_time", int64(-1))
	f.Add("Carol_1", int64(1), uint32(3), uint32(65536), uint8(2), []byte{}, bytes.Repeat([]byte{1}, 60), int64(4), int64(1), "kdf_memory", int64(1)<<40)
	f.Add("dave", int64(2), uint32(0), uint32(0), uint8(0), []byte(nil), []byte(nil), int64(-3), int64(7), "kdf_threads", int64(256))
	f.Add("erin", int64(2), uint32(1), uint32(8), uint8(1), []byte("s"), []byte("w"), int64(0), int64(0), "failed_logins", int64(-1)<<63)
	f.Add("frank", int64(2), uint32(1), uint32(8), uint8(1), []byte("s"), []byte("w"), int64(0), int64(0), "locked", int64(2))
	cols := []string{"kdf_time", "kdf_memory", "kdf_threads", "failed_logins", "locked", "salt", "wrapped_key"}
	f.Fuzz(func(t *testing.T, name string, role int64, kt, km uint32, kp uint8, salt, wrapped []byte, failed, locked int64, col string, raw int64) {
		u := UserRecord{Name: name, Role: Role(role), KDF: KDFParams{kt, km, kp}, Salt: salt, WrappedKey: wrapped,
			FailedLogins: int(failed), Locked: locked != 0}
		err := s.CreateUser(u)
		if err != nil {
			return // refused (empty name, bad role, exists, ...)
		}
		defer s.DeleteUser(name)
		got, err := s.User(name)
		if err != nil {
			t.Fatalf("reading back user %q: %v", name, err)
		}
		// The fields written, compared one by one: a later format adds
		// fields that the store fills in itself.
		type written struct {
			Role             Role
			KDF              KDFParams
			Salt, WrappedKey string
			FailedLogins     int
			Locked           bool
		}
		w := func(u *UserRecord) written {
			return written{u.Role, u.KDF, string(u.Salt), string(u.WrappedKey), u.FailedLogins, u.Locked}
		}
		if got.Name == "" || w(got) != w(&u) {
			t.Fatalf("user read back as %+v, want %+v", w(got), w(&u))
		}
		if _, _, err := s.LoginFailed(name, 3); err != nil {
			t.Fatalf("LoginFailed on a user just read: %v", err)
		}
		// Overwrite one column with an arbitrary integer, or a text.
		c := cols[int(uint64(raw)%uint64(len(cols)))]
		for _, v := range []any{raw, fmt.Sprint(raw), float64(raw) / 3} {
			if _, err := s.db.Exec(`UPDATE users SET `+c+` = ? WHERE name = ?`, v, got.Name); err != nil {
				continue // a CHECK or NOT NULL refused it
			}
			r, err := s.User(name)
			if err != nil {
				continue
			}
			if r.KDF.Validate() == nil && r.KDF.Memory <= 64 && r.KDF.Time <= 2 {
				_ = DeriveKEK([]byte("pw"), r.Salt, r.KDF)
			}
			if _, err := UnwrapTokenKey(bytes.Repeat([]byte{3}, 32), r.WrappedKey, r.Name); err == nil {
				t.Fatalf("a fuzzed wrapped key %x opened", r.WrappedKey)
			}
			if _, err := s.Users(); err != nil {
				_ = err
			}
		}
	})
}

// FuzzObjectRecord: an object written through CreateObject reads back
// equal; attribute rows rewritten with arbitrary types and values read back
// as written; a fuzzed sealed value never opens under a token key.
// Seeds: testdata/fuzz/FuzzObjectRecord.
func FuzzObjectRecord(f *testing.F) {
	s := fuzzStore(f)
	enc := func(kv ...any) []byte {
		var b []byte
		for i := 0; i < len(kv); i += 2 {
			b = binary.LittleEndian.AppendUint64(b, uint64(kv[i].(int)))
			v := kv[i+1].([]byte)
			b = binary.LittleEndian.AppendUint16(b, uint16(len(v)))
			b = append(b, v...)
		}
		return b
	}
	f.Add("uid-1", "alice", true, enc(int(ck.CKA_CLASS), ulong(3), int(ck.CKA_LABEL), []byte("l")), enc(int(ck.CKA_VALUE), []byte("sealed")), int64(-1))
	f.Add("uid-2", "", false, enc(int(ck.CKA_TOKEN), []byte{1}), []byte{}, int64(1)<<62)
	f.Add("uid-3", "nobody", false, []byte{}, []byte{}, int64(0))
	f.Fuzz(func(t *testing.T, uid, owner string, private bool, attrsB, sealedB []byte, rawType int64) {
		parse := func(b []byte) map[ck.AttributeType][]byte {
			m := map[ck.AttributeType][]byte{}
			for len(b) >= 10 {
				a := ck.AttributeType(binary.LittleEndian.Uint64(b))
				n := int(binary.LittleEndian.Uint16(b[8:]))
				b = b[10:]
				n = min(n, len(b))
				m[a] = bytes.Clone(b[:n])
				b = b[n:]
			}
			return m
		}
		o := ObjectRecord{UniqueID: uid, Owner: owner, Private: private, Attrs: parse(attrsB), Sealed: parse(sealedB)}
		created, err := s.CreateObject(o)
		if err != nil {
			return
		}
		defer s.DeleteObject(created.ID)
		got, err := s.Object(created.ID)
		if err != nil {
			t.Fatalf("reading back object %d: %v", created.ID, err)
		}
		if got.UniqueID != uid || got.Private != private || len(got.Attrs) != len(o.Attrs) || len(got.Sealed) != len(o.Sealed) {
			t.Fatalf("object read back as %+v, want %+v", got, o)
		}
		for a, v := range o.Attrs {
			if !bytes.Equal(got.Attrs[a], v) {
				t.Fatalf("%s read back as %x, want %x", a, got.Attrs[a], v)
			}
		}
		tk := bytes.Repeat([]byte{5}, 32)
		for a, v := range got.Sealed {
			if _, err := OpenAttr(tk, uid, a, v); err == nil {
				t.Fatalf("a fuzzed sealed %s opened", a)
			}
		}
		// A row the API never writes: any integer type, a text value.
		if _, err := s.db.Exec(`INSERT OR REPLACE INTO attrs (object_id, type, value) VALUES (?, ?, ?)`, created.ID, rawType, fmt.Sprint(rawType)); err == nil {
			got, err := s.Object(created.ID)
			if err == nil && !bytes.Equal(got.Attrs[ck.AttributeType(rawType)], []byte(fmt.Sprint(rawType))) {
				t.Fatalf("type %d read back as %q", rawType, got.Attrs[ck.AttributeType(rawType)])
			}
			_, _ = s.Find(Query{Match: map[ck.AttributeType][]byte{ck.AttributeType(rawType): []byte(fmt.Sprint(rawType))}, Viewer: owner})
		}
	})
}
