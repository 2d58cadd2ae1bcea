package directory_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/babelforce/bridge/directory"
	"github.com/babelforce/bridge/directory/directorytest"
)

// update rewrites the golden files of this package (go test ./directory -update), as in every
// package with golden files.
var update = flag.Bool("update", false, "rewrite the golden files in testdata/directory")

func conformanceSnapshot(t *testing.T) *directory.Snapshot {
	t.Helper()
	d := directorytest.Conformance(t)
	attr, vals := directorytest.OpenLDAPDisabled()
	src, err := directory.NewLDIF(directory.LDIFConfig{
		Path:       writeFile(t, "c.ldif", d.OpenLDAPExport("dc=example,dc=com")),
		Attributes: directory.LDAPAttributes{Disabled: attr, DisabledValues: vals},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := src.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	snap.ReadAt = time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600))
	snap.Source = "ldif:conformance.ldif"
	return snap
}

func TestWriteDumpJSON(t *testing.T) {
	snap := conformanceSnapshot(t)
	var a, b bytes.Buffer
	if err := directory.WriteDump(&a, snap, "json"); err != nil {
		t.Fatal(err)
	}
	// Same content in another order must give the same bytes.
	shuffled := *snap
	shuffled.Users = append([]directory.User(nil), snap.Users...)
	shuffled.Groups = append([]directory.Group(nil), snap.Groups...)
	for i, j := 0, len(shuffled.Users)-1; i < j; i, j = i+1, j-1 {
		shuffled.Users[i], shuffled.Users[j] = shuffled.Users[j], shuffled.Users[i]
	}
	for i, j := 0, len(shuffled.Groups)-1; i < j; i, j = i+1, j-1 {
		shuffled.Groups[i], shuffled.Groups[j] = shuffled.Groups[j], shuffled.Groups[i]
	}
	if err := directory.WriteDump(&b, &shuffled, "json"); err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() {
		t.Error("dump depends on the order of users and groups in the snapshot")
	}

	var doc struct {
		Source string `json:"source"`
		ReadAt string `json:"read_at"`
		Counts struct {
			Users, ActiveUsers, Groups int
		} `json:"counts"`
		Users []struct {
			ID        string `json:"id"`
			UserName  string `json:"user_name"`
			Active    bool   `json:"active"`
			Groups    []struct{ ID, Name string }
			AllGroups []struct{ ID, Name string } `json:"all_groups"`
		} `json:"users"`
		Groups []struct {
			Name         string `json:"name"`
			MemberUsers  int    `json:"member_users"`
			MemberGroups int    `json:"member_groups"`
			AllUsers     int    `json:"all_users"`
		} `json:"groups"`
	}
	if err := json.Unmarshal(a.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Source != "ldif:conformance.ldif" || doc.ReadAt != "2026-01-02T02:04:05Z" {
		t.Errorf("source/read_at = %q %q", doc.Source, doc.ReadAt)
	}
	if doc.Counts.Users != 20 || doc.Counts.Groups != 14 {
		t.Errorf("counts = %+v", doc.Counts)
	}
	for i := 1; i < len(doc.Users); i++ {
		if doc.Users[i-1].ID >= doc.Users[i].ID {
			t.Fatalf("users not sorted by id at %d", i)
		}
	}
	for i := 1; i < len(doc.Groups); i++ {
		if doc.Groups[i-1].Name >= doc.Groups[i].Name {
			t.Fatalf("groups not sorted by name at %d", i)
		}
	}
	for _, u := range doc.Users {
		if u.UserName != "ann.archer" {
			continue
		}
		var all []string
		for _, g := range u.AllGroups {
			all = append(all, g.Name)
		}
		if got := strings.Join(all, ","); got != "all-staff,contact-centre,support,support-tier1" {
			t.Errorf("ann.archer all_groups = %s", got)
		}
		if len(u.Groups) != 1 || u.Groups[0].Name != "support-tier1" || u.Groups[0].ID == "" {
			t.Errorf("ann.archer groups = %+v", u.Groups)
		}
	}
	for _, g := range doc.Groups {
		if g.Name == "support" && (g.MemberUsers != 0 || g.MemberGroups != 2 || g.AllUsers != 5) {
			t.Errorf("support = %+v, want 0 users, 2 groups, 5 in all", g)
		}
	}
	// The JSON shape is documented; keep a golden copy so changes are deliberate.
	golden := filepath.Join("..", "testdata", "directory", "dump.golden.json")
	if *update {
		if err := os.WriteFile(golden, a.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test ./directory -run TestWriteDumpJSON -update creates it)", err)
	}
	if !bytes.Equal(want, a.Bytes()) {
		t.Errorf("dump differs from %s (go test ./directory -run TestWriteDumpJSON -update accepts it)", golden)
	}
}

func TestWriteDumpText(t *testing.T) {
	snap := conformanceSnapshot(t)
	var b bytes.Buffer
	if err := directory.WriteDump(&b, snap, "text"); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"Users:   20 (19 active, 1 inactive)",
		"Groups:  14",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text dump lacks %q:\n%s", want, out)
		}
	}
	var hugo, ann, sam string
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "hugo.hahn "):
			hugo = line
		case strings.HasPrefix(line, "ann.archer "):
			ann = line
		case strings.HasPrefix(line, "sam.stone "):
			sam = line
		}
	}
	if !strings.Contains(hugo, " NO ") {
		t.Errorf("inactive user not flagged: %q", hugo)
	}
	if f := strings.Fields(ann); len(f) < 8 || f[len(f)-2] != "support-tier1" || f[len(f)-1] != "all-staff,contact-centre,support" {
		t.Errorf("ann.archer line = %q", ann)
	}
	if f := strings.Fields(sam); len(f) < 2 || f[len(f)-2] != "-" || f[len(f)-1] != "-" {
		t.Errorf("user in no group should show - -: %q", sam)
	}
	if err := directory.WriteDump(&b, snap, "xml"); err == nil || !strings.Contains(err.Error(), `"xml"`) {
		t.Errorf("unknown format: err = %v", err)
	}
}
