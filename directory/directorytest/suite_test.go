package directorytest

import (
	"context"
	"strings"
	"testing"

	"github.com/babelforce/bridge/directory"
)

type staticReader struct{ snaps []*directory.Snapshot }

func (r *staticReader) Read(context.Context) (*directory.Snapshot, error) {
	s := r.snaps[0]
	if len(r.snaps) > 1 {
		r.snaps = r.snaps[1:]
	}
	return s, nil
}

func TestConformanceData(t *testing.T) {
	d := Conformance(t)
	if len(d.Users) < 20 || len(d.Groups) < 10 {
		t.Fatalf("%d users, %d groups", len(d.Users), len(d.Groups))
	}
	if got := strings.Join(d.TransitiveGroups("ann.archer"), ","); got != "all-staff,contact-centre,support,support-tier1" {
		t.Errorf("ann.archer: %s", got)
	}
	if got := strings.Join(d.TransitiveGroups("nina.novak"), ","); got != "cycle-a,cycle-b" {
		t.Errorf("nina.novak (cycle): %s", got)
	}
	if got := d.TransitiveGroups("sam.stone"); len(got) != 0 {
		t.Errorf("sam.stone: %v", got)
	}
}

func TestRunAcceptsThePerfectSnapshot(t *testing.T) {
	d := Conformance(t)
	Run(t, "perfect", &staticReader{snaps: []*directory.Snapshot{d.Snapshot()}}, Options{
		Directory:  d,
		Attributes: map[string]string{"department": "department", "employeeNumber": "employeenumber"},
	})
}

func TestCompareFindsDifferences(t *testing.T) {
	d := Conformance(t)
	for _, tc := range []struct {
		name   string
		mutate func(s *directory.Snapshot)
		want   string
	}{
		{"missing user", func(s *directory.Snapshot) { s.Users = s.Users[1:]; s.Resolve() }, "users: missing"},
		{"extra group", func(s *directory.Snapshot) {
			s.Groups = append(s.Groups, directory.Group{ID: "x", Name: "extra"})
			s.Resolve()
		}, `unexpected ["extra"]`},
		{"active flipped", func(s *directory.Snapshot) { s.Users[0].Active = !s.Users[0].Active }, "Active ="},
		{"phone type", func(s *directory.Snapshot) {
			for i := range s.Users {
				if len(s.Users[i].Phones) > 0 {
					s.Users[i].Phones[0].Type = "fax"
					return
				}
			}
		}, "phones"},
		{"email", func(s *directory.Snapshot) { s.Users[0].Emails[0].Value = "x@y" }, "emails"},
		{"second phone primary", func(s *directory.Snapshot) {
			for i := range s.Users {
				if len(s.Users[i].Phones) > 1 {
					s.Users[i].Phones[0].Primary, s.Users[i].Phones[1].Primary = false, true
					return
				}
			}
		}, "primary phones"},
		{"no primary e-mail", func(s *directory.Snapshot) { s.Users[0].Emails[0].Primary = false }, "0 primary e-mails"},
		{"no display name fallback", func(s *directory.Snapshot) {
			for i := range s.Users {
				if s.Users[i].UserName == "sam.stone" {
					s.Users[i].DisplayName = ""
				}
			}
		}, `user "sam.stone": DisplayName = ""`},
		{"nesting lost", func(s *directory.Snapshot) {
			for i := range s.Groups {
				if s.Groups[i].Name == "support" {
					s.Groups[i].MemberGroups = nil
				}
			}
			s.Resolve()
		}, "transitive groups"},
		{"duplicate id", func(s *directory.Snapshot) { s.Users[1].ID = s.Users[0].ID }, "is also the id of"},
		{"no source", func(s *directory.Snapshot) { s.Source = "" }, "Source is empty"},
		{"attribute", func(s *directory.Snapshot) { s.Users[0].Attributes["department"] = []string{"Nowhere"} }, `Attr("department")`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := d.Snapshot()
			tc.mutate(s)
			probs := Compare(d, s, Options{Attributes: map[string]string{"department": "department"}})
			if len(probs) == 0 || !strings.Contains(strings.Join(probs, "\n"), tc.want) {
				t.Errorf("problems %q, want one containing %q", probs, tc.want)
			}
		})
	}
	// ids that change between reads
	a, b := d.Snapshot(), d.Snapshot()
	b.Users[0].ID = "changed"
	if probs := compareIDs(a, b); len(probs) != 1 || !strings.Contains(probs[0], "on the second") {
		t.Errorf("compareIDs: %q", probs)
	}
}

func TestRenderings(t *testing.T) {
	d := Conformance(t)
	ol := d.OpenLDAPLDIF("dc=example,dc=com")
	for _, want := range []string{
		"dn: uid=ann.archer,ou=people,dc=example,dc=com\n",
		"member: cn=support,ou=groups,dc=example,dc=com\n",
		"employeeType: inactive\n",
		"cn:: R2luYSBHYXJjw61h\n", // "Gina García" is not a SAFE-STRING
	} {
		if !strings.Contains(ol, want) {
			t.Errorf("OpenLDAP LDIF lacks %q", want)
		}
	}
	ad := d.SambaLDIF("OU=c,DC=example,DC=test")
	for _, want := range []string{"userAccountControl: 514\n", "userAccountControl: 512\n", "unicodePwd:: ", "changetype: modify\nadd: member\n", "otherMailbox: q.qing@example.com\n"} {
		if !strings.Contains(ad, want) {
			t.Errorf("Samba LDIF lacks %q", want)
		}
	}
	for _, line := range strings.Split(ad+ol+d.ADExport("OU=c,DC=x"), "\n") {
		if len(line) > 77 {
			t.Fatalf("line not folded: %q", line)
		}
	}
	seed, err := d.ScimmySeed()
	if err != nil || !strings.Contains(string(seed), `"type": "Group"`) || !strings.Contains(string(seed), `"active": false`) {
		t.Errorf("scimmy seed: %v", err)
	}
}
