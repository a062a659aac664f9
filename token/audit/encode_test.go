package audit

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestEncodeAsMarshal: Encode writes what json.Marshal writes, byte for
// byte, for events with every field zero or not, extreme numbers, and
// strings of every printable ASCII character (appendJSON's) and of others
// (json.Marshal's); appendJSON is checked on its own for the first.
func TestEncodeAsMarshal(t *testing.T) {
	var printable []byte
	for c := byte(0x20); c <= 0x7e; c++ {
		printable = append(printable, c)
	}
	strs := []string{"", "HSM Return: SUCCESS", "user", string(printable), "a\"b", "a\\b", "<x>", "a&b",
		"tab\there", "nl\n", "\x00\x1f", "é", "\xff\xfe", "\u2028", "\x7f"}
	ints := []int64{0, 1, -1, 163, math.MaxInt64, math.MinInt64}
	uints := []uint64{0, 1, 42, math.MaxUint32, math.MaxUint64}
	r := rand.New(rand.NewPCG(1, 2))
	check := func(e Event) {
		t.Helper()
		want, err := json.Marshal(e)
		require.NoError(t, err)
		got, err := e.Encode()
		require.NoError(t, err)
		require.Equal(t, string(want), string(got))
		if plainJSON(e.Response) && plainJSON(e.User) && plainJSON(e.Actor) && plainJSON(e.Detail) {
			require.Equal(t, string(want), string(e.appendJSON(nil)))
		}
	}
	check(Event{})
	for op := 0; op <= int(GOHSM_STORE_FAULT)+2; op++ {
		check(Event{Opcode: Opcode(op), TimeUS: 1765000000000000, Session: 7, Response: "HSM Return: SUCCESS", LogType: MGMT_KEY_DETAILS_LOG, Key: 9})
	}
	check(Event{Opcode: math.MaxUint16})
	for range 20000 {
		e := Event{
			TimeUS:    ints[r.IntN(len(ints))],
			Reboot:    uint32(uints[r.IntN(len(uints))]),
			Opcode:    Opcode(r.Uint32()),
			Session:   uints[r.IntN(len(uints))],
			Code:      int(ints[r.IntN(len(ints))]),
			Response:  strs[r.IntN(len(strs))],
			LogType:   LogType(ints[r.IntN(len(ints))]),
			User:      strs[r.IntN(len(strs))],
			UserType:  UserType(ints[r.IntN(len(ints))]),
			Key:       uints[r.IntN(len(uints))],
			PublicKey: uints[r.IntN(len(uints))],
			Actor:     strs[r.IntN(len(strs))],
			Detail:    strs[r.IntN(len(strs))],
		}
		check(e)
	}
}

// TestPlainJSON: the characters json.Marshal escapes are not plain.
func TestPlainJSON(t *testing.T) {
	for c := 0; c < 256; c++ {
		s := string([]byte{byte(c)})
		b, err := json.Marshal(s)
		require.NoError(t, err)
		asIs := string(b) == `"`+s+`"`
		if plainJSON(s) {
			require.True(t, asIs, "%#x", c)
		}
	}
	require.True(t, plainJSON("HSM Return: SUCCESS"))
	require.False(t, plainJSON("é"))
}

// BenchmarkEncode: a session key's creation record, as the flush encodes
// it; /marshal is json.Marshal, which Encode used for every event.
func BenchmarkEncode(b *testing.B) {
	e := Event{TimeUS: 1765000000000000, Reboot: 3, Opcode: CN_DERIVE_KEY, Session: 2, Response: "HSM Return: SUCCESS",
		LogType: MGMT_KEY_DETAILS_LOG, Key: 1 << 40, Actor: "user"}
	b.Run("encode", func(b *testing.B) {
		for b.Loop() {
			if _, err := e.Encode(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("marshal", func(b *testing.B) {
		for b.Loop() {
			if _, err := json.Marshal(e); err != nil {
				b.Fatal(err)
			}
		}
	})
}
