package store

import (
	"context"
	"testing"

	"github.com/babelforce/bridge/internal/testenv"
)

// backend opens an empty store of one kind for a test.
type backend struct {
	name string
	open func(t *testing.T) *Store
}

// backends are the store backends every shared test runs against: SQLite in memory, and
// PostgreSQL (a fresh database on the test cluster; skipped outside CI without PostgreSQL).
var backends = []backend{
	{name: BackendSQLite, open: openMem},
	{name: BackendPostgres, open: openPG},
}

// eachBackend runs f once per backend, as a subtest named after it.
func eachBackend(t *testing.T, f func(t *testing.T, open func(*testing.T) *Store)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { f(t, b.open) })
	}
}

// openPG opens a store on a fresh PostgreSQL database.
func openPG(t *testing.T) *Store {
	t.Helper()
	return openURL(t, testenv.StartPostgres(t).URL)
}

// openURL opens another handle (another "replica") on a database.
func openURL(t *testing.T, url string) *Store {
	t.Helper()
	s, err := Open(context.Background(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
