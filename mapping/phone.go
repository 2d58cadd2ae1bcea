package mapping

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"

	"github.com/nyaruka/phonenumbers"
)

// phoneKey and phoneResult memoise normalizePhone in Rules: a periodic reconcile sees the
// same numbers every time, and libphonenumber takes microseconds per number. The memo is
// filled only from the second Desire on: a one-shot command (bridge plan, sync, explain)
// maps once and would only hold every number (about 160 bytes each) to the end of its run.
type phoneKey struct{ raw, region string }

type phoneResult struct{ number, problem string }

// maxPhoneCache bounds the memo (a few tens of MB at most).
const maxPhoneCache = 500_000

func (r *Rules) normalizePhone(raw, region string) (string, string) {
	k := phoneKey{raw, region}
	r.phoneMu.RLock()
	res, ok := r.phoneCache[k]
	r.phoneMu.RUnlock()
	if ok {
		return res.number, res.problem
	}
	res.number, res.problem = normalizePhone(raw, region)
	if r.desires.Load() < 2 {
		return res.number, res.problem
	}
	r.phoneMu.Lock()
	if len(r.phoneCache) >= maxPhoneCache {
		clear(r.phoneCache) // numbers of long-gone users must not crowd out today's
	}
	r.phoneCache[k] = res
	r.phoneMu.Unlock()
	return res.number, res.problem
}

// normalizePhone returns raw in E.164 or a problem. An extension ("ext. 12", "x12",
// "Durchwahl 12", ";ext=12") is split off and not dialled; any other letter makes the number
// invalid (libphonenumber would read letters as keypad digits: "030 123 call me" became
// +4930123225563). A result that is not a valid number for its region or not E.164 is invalid.
func normalizePhone(raw, region string) (string, string) {
	base := strings.TrimSpace(raw)
	// Every extension marker and the tel: scheme hold a letter or '#': a number without
	// either (nearly all of them) skips the two regular expressions, which cost more than
	// libphonenumber itself.
	if strings.IndexByte(base, '#') >= 0 || strings.IndexFunc(base, unicode.IsLetter) >= 0 {
		base = phoneExtension.ReplaceAllString(base, "")
		base = strings.TrimSpace(telScheme.ReplaceAllString(base, ""))
	}
	if strings.IndexFunc(base, unicode.IsLetter) >= 0 {
		return "", fmt.Sprintf("number %q has letters in it (only an extension such as \"ext. 12\" may follow the number)", raw)
	}
	reg, in := region, base
	if reg == "" {
		// Without a region only international numbers can be read; "00" is the international
		// prefix almost everywhere.
		reg = "ZZ"
		if strings.HasPrefix(base, "00") {
			in = "+" + base[2:]
		}
	}
	num, err := phonenumbers.Parse(in, reg)
	var out string
	if err == nil && phonenumbers.IsValidNumber(num) {
		out = phonenumbers.Format(num, phonenumbers.E164)
	}
	if out == "" || !isE164(out) {
		if region == "" && !strings.HasPrefix(base, "+") && !strings.HasPrefix(base, "00") {
			return "", fmt.Sprintf("number %q has no country code and phone.default_region is not set", raw)
		}
		if region == "" || strings.HasPrefix(base, "+") {
			return "", fmt.Sprintf("number %q is not a valid phone number", raw)
		}
		return "", fmt.Sprintf("number %q is not a valid phone number for region %s", raw, region)
	}
	return out, ""
}

// phoneExtension matches an extension at the end of a number: a marker (ext, extension, x,
// Durchwahl, DW, App., ;ext=, #) and its digits.
var phoneExtension = regexp.MustCompile(`(?i)[\s,;]*(?:;?ext=|(?:ext|extn|extension|durchwahl|dw|app|apparat|nebenstelle)\.?:?|x|#)\s*\d{1,10}\s*$`)

// telScheme matches an RFC 3966 "tel:" prefix.
var telScheme = regexp.MustCompile(`(?i)^tel:`)

// isE164 reports whether n is "+", a country code and at most 15 digits in all.
func isE164(n string) bool {
	if len(n) < 3 || len(n) > 16 || n[0] != '+' || n[1] == '0' {
		return false
	}
	for _, c := range n[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
