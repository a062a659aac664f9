//go:build !nopostgres

package postgres

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"gohsm/token/store"
)

// TestGenerationBackwards: a database whose generation went back (a
// failover to a standby that had not received the last commits, a restore
// of a dump under running hosts) must not freeze the other Stores'
// Generation at the higher number they saw: a commit made after that is
// seen by every Store within the notification bound, or their caches
// would hold what the database no longer says (and the handles the lost
// commits handed out are handed out again).
func TestGenerationBackwards(t *testing.T) {
	dsn := freshURL(t)
	a := initStore(t, dsn)
	b := openStore(t, dsn, 0)
	eventually(t, 5*time.Second, "listening", func() error { return listening(b) })
	for i := range 5 {
		_, err := a.CreateObject(testObject(fmt.Sprint("x", i), ""))
		require.NoError(t, err)
	}
	_, last, err := a.CreateObjects([]store.ObjectRecord{testObject("y", "")})
	require.NoError(t, err)
	eventually(t, 2*time.Second, "b notified", func() error {
		if g, _ := b.Generation(); g != last.After {
			return fmt.Errorf("generation %d, want %d", g, last.After)
		}
		return nil
	})
	// The database loses its last 4 commits' generation.
	_, err = connect(t, dsn).Exec(context.Background(), `UPDATE generation SET n = n - 4`)
	require.NoError(t, err)
	before, err := b.Generation()
	require.NoError(t, err)
	_, err = a.CreateObject(testObject("z", ""))
	require.NoError(t, err)
	eventually(t, 2*time.Second, "b sees the commit after the loss", func() error {
		if g, _ := b.Generation(); g == before {
			return fmt.Errorf("generation still %d", g)
		}
		return nil
	})
}
