package store

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
)

// Backends, as Store.Backend reports them.
const (
	BackendSQLite   = "sqlite"
	BackendPostgres = "postgres"
)

// dialect is what differs between SQLite and PostgreSQL. The queries are written once, for
// SQLite's syntax with ? placeholders; the dialect adapts them.
type dialect struct {
	name string
	// numbered: placeholders are $1, $2, ... (PostgreSQL) instead of ?.
	numbered bool
	// limitAll is the LIMIT that means none (SQLite wants a LIMIT before any OFFSET).
	limitAll string
	// forUpdate and forShare lock the rows a read-modify-write transaction reads (PostgreSQL
	// runs transactions side by side; SQLite's BEGIN IMMEDIATE already serialises writers).
	forUpdate, forShare string
	// readTx are the options of read-only transactions: one snapshot for all their queries.
	readTx *sql.TxOptions
	// textCollateC: text columns are created COLLATE "C" so that PostgreSQL compares and orders
	// them byte by byte, as SQLite does, whatever the database's locale.
	textCollateC bool
}

var (
	sqliteDialect = &dialect{
		name:     BackendSQLite,
		limitAll: "LIMIT -1",
		readTx:   &sql.TxOptions{ReadOnly: true},
	}
	postgresDialect = &dialect{
		name:         BackendPostgres,
		numbered:     true,
		limitAll:     "LIMIT ALL",
		forUpdate:    " FOR UPDATE",
		forShare:     " FOR SHARE",
		readTx:       &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead},
		textCollateC: true,
	}
)

// rebind turns ? placeholders into $1, $2, ... for PostgreSQL (outside quoted literals).
func (d *dialect) rebind(q string) string {
	if !d.numbered || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 8)
	n := 0
	quoted := false
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'':
			quoted = !quoted
			b.WriteByte(c)
		case c == '?' && !quoted:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

var textType = regexp.MustCompile(`\bTEXT\b`)

// ddl adapts a schema statement.
func (d *dialect) ddl(stmt string) string {
	if d.textCollateC {
		stmt = textType.ReplaceAllString(stmt, `TEXT COLLATE "C"`)
	}
	return d.rebind(stmt)
}

// uniqueViolation reports whether err is a violation of the unique index on table.column.
func (d *dialect) uniqueViolation(err error, table, column string) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505" && (pgErr.TableName == table || strings.Contains(pgErr.ConstraintName, column))
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		const sqliteConstraintUnique = 2067
		return sqErr.Code() == sqliteConstraintUnique && strings.Contains(sqErr.Error(), table+"."+column)
	}
	return false
}

// txn is a transaction that adapts each query to the dialect.
type txn struct {
	*sql.Tx
	d *dialect
}

func (t *txn) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return t.Tx.ExecContext(ctx, t.d.rebind(query), args...)
}

func (t *txn) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.Tx.QueryContext(ctx, t.d.rebind(query), args...)
}

func (t *txn) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return t.Tx.QueryRowContext(ctx, t.d.rebind(query), args...)
}

// begin starts a transaction (opts nil: a read-write one).
func (s *Store) begin(ctx context.Context, opts *sql.TxOptions) (*txn, error) {
	tx, err := s.db.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &txn{Tx: tx, d: s.d}, nil
}

// beginRead starts a read-only transaction that sees one snapshot.
func (s *Store) beginRead(ctx context.Context) (*txn, error) { return s.begin(ctx, s.d.readTx) }

// IsPostgresURL reports whether path names a PostgreSQL database (postgres:// or
// postgresql:// URL) rather than a SQLite file.
func IsPostgresURL(path string) bool {
	p := strings.ToLower(strings.TrimSpace(path))
	return strings.HasPrefix(p, "postgres://") || strings.HasPrefix(p, "postgresql://")
}

// Redact returns path fit for logs and errors: a PostgreSQL URL with its password replaced
// by "xxxxx" (password query parameters too); a file path as it is.
func Redact(path string) string {
	if !IsPostgresURL(path) {
		return path
	}
	u, err := url.Parse(strings.TrimSpace(path))
	if err != nil {
		return "postgres://(unparsable URL, not shown)"
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}
