// Package bench measures bridge at scale: `bench/scale.sh N` (not part of `go test ./...`,
// which does not build this file) generates a directory of N people, loads it into a real
// slapd started by internal/testenv, and measures side by side
//
//   - anchor A: ldapsearch reading the users and the groups' members (paged), the floor of
//     any LDAP read;
//   - anchor A′: the same read through go-ldap, the LDAP library bridge is built on (the
//     users and the groups on two connections at once, as bridge reads them; every entry
//     dropped): the floor of any read bridge can make, since go-ldap decodes every value into
//     a packet tree before bridge sees it;
//   - anchor B: a paged GET of every agent from the babelforce simulator, the floor of any
//     babelforce read;
//   - bridge (a separate process, the binary named by BRIDGE_BIN): the first sync, a no-op
//     `bridge plan`, a no-op `bridge sync` and a sync of 100 changed people, each with wall
//     time, CPU time and peak RSS (from /usr/bin/time -v) and the simulator's calls by kind.
//
// The directory: N users (inetOrgPerson, mail, telephoneNumber in national or international
// format), a scope group holding everyone, 100 team groups (agent groups), 50 skill groups
// (tags), enough small "misc" groups that there are about 2% as many groups as people and
// about 3 memberships per person, and a nested cycle (cycle-a ∋ cycle-b ∋ cycle-a).
//
// `bench/faults.sh [N] [RATES]` (bench/faults_test.go, same build tag) measures convergence
// under faults from the CLI: N generated people (default 3,000) in an LDIF file, the
// simulator with babelforcetest.Mix faults at each rate (default 5% and 20%, seeded), and
// `bridge sync` again and again until a fault-free plan is empty; it prints runs to
// converge, duplicate agents and login users and wrongly disabled ones, counted from the
// simulator's state (not through its faulty API).
package bench
