package directory

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// LDIFEntry is one record of an LDIF file.
type LDIFEntry struct {
	// DN as written in the file.
	DN string
	// Line is the line number (1-based) of the record's "dn:" line.
	Line int
	// Attrs maps lower-cased attribute descriptions (with options such as ";binary" kept) to
	// their values in file order. Base64 ("::") values are decoded: they may hold binary data
	// such as an AD objectGUID.
	Attrs map[string][]string
	// Names keeps the attribute descriptions in their original spelling, by lower-cased key.
	Names map[string]string
}

// Get returns the values of attribute name (any case), or nil.
func (e *LDIFEntry) Get(name string) []string { return e.Attrs[strings.ToLower(name)] }

// First returns the first value of attribute name (any case), or "".
func (e *LDIFEntry) First(name string) string {
	if v := e.Get(name); len(v) > 0 {
		return v[0]
	}
	return ""
}

// LDIFError is a problem at one line of an LDIF file.
type LDIFError struct {
	Line int
	Msg  string
	// Incomplete marks a file that does not end with a complete record (cut off): then
	// errors.Is(err, ErrIncomplete) holds.
	Incomplete bool
}

func (e *LDIFError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// Unwrap makes errors.Is(err, ErrIncomplete) true for a cut-off file.
func (e *LDIFError) Unwrap() error {
	if e.Incomplete {
		return ErrIncomplete
	}
	return nil
}

// tailReader remembers the last byte read and whether anything was.
type tailReader struct {
	r    io.Reader
	last byte
	any  bool
}

func (t *tailReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		t.last, t.any = p[n-1], true
	}
	return n, err
}

// maxLDIFLine bounds one physical line (a base64 jpegPhoto can be long).
const maxLDIFLine = 16 << 20

// ParseLDIF reads LDIF content records (RFC 2849): an optional "version: 1" line, records
// separated by blank lines, "#" comments (continued comments too), continuation lines that
// start with one space, base64 values ("attr:: …") and "changetype: add" records (their
// attributes are taken as content). Other change types, controls and URL values ("attr:< …")
// are rejected. Errors are *LDIFError values naming the line.
//
// A file that does not end with a complete record is an incomplete read (an *LDIFError with
// Incomplete set, errors.Is ErrIncomplete), never a smaller directory: the last line must end
// with a newline (an export cut off mid-line or mid-value has none), and the last line must
// not be a continuation line with nothing on it (a value cut off where it was folded).
func ParseLDIF(r io.Reader) ([]LDIFEntry, error) {
	tail := &tailReader{r: r}
	sc := bufio.NewScanner(tail)
	sc.Buffer(make([]byte, 0, 64<<10), maxLDIFLine)
	var (
		entries []LDIFEntry
		cur     *LDIFEntry
		// the logical line being assembled, and where it started
		logical      strings.Builder
		logicalStart int
		haveLogical  bool
		inComment    bool
		lineNo       int
		sawRecord    bool
		changeSeen   bool
		// lastLine is the last physical line and recordStart the line of the last "dn:".
		lastLine    string
		recordStart int
	)
	flushLine := func() error {
		if !haveLogical {
			return nil
		}
		haveLogical = false
		line := logical.String()
		logical.Reset()
		if !utf8.ValidString(line) {
			return &LDIFError{Line: logicalStart, Msg: "not valid UTF-8 (binary values must be base64-encoded, with \"::\")"}
		}
		return ldifParseLine(line, logicalStart, &cur, &entries, &sawRecord, &changeSeen)
	}
	endRecord := func() {
		if cur != nil {
			entries = append(entries, *cur)
			cur = nil
		}
		changeSeen = false
	}
	for sc.Scan() {
		lineNo++
		raw := sc.Bytes()
		raw = bytes.TrimSuffix(raw, []byte("\r"))
		if lineNo == 1 {
			raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf")) // UTF-8 byte order mark
		}
		line := string(raw)
		lastLine = line
		if strings.HasPrefix(strings.ToLower(line), "dn:") {
			recordStart = lineNo
		}
		switch {
		case strings.HasPrefix(line, " "):
			if inComment {
				continue
			}
			if !haveLogical {
				return nil, &LDIFError{Line: lineNo, Msg: "continuation line (starting with a space) without a line to continue"}
			}
			logical.WriteString(line[1:])
		case strings.HasPrefix(line, "#"):
			if err := flushLine(); err != nil {
				return nil, err
			}
			inComment = true
		case strings.TrimSpace(line) == "":
			inComment = false
			if err := flushLine(); err != nil {
				return nil, err
			}
			endRecord()
		default:
			inComment = false
			if err := flushLine(); err != nil {
				return nil, err
			}
			logical.WriteString(line)
			logicalStart = lineNo
			haveLogical = true
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &LDIFError{Line: lineNo + 1, Msg: fmt.Sprintf("line longer than %d bytes", maxLDIFLine)}
		}
		return nil, fmt.Errorf("read ldif: %w", err)
	}
	if tail.any && tail.last != '\n' {
		return nil, &LDIFError{Line: lineNo, Incomplete: true, Msg: fmt.Sprintf(
			"the file ends in the middle of a line (%q, no final newline): the export was cut off, so the record that starts at line %d and everything after it are missing; nothing is applied from an incomplete file (export again)",
			ldifClip(lastLine), recordStart)}
	}
	if strings.TrimSpace(lastLine) == "" && strings.HasPrefix(lastLine, " ") && haveLogical {
		return nil, &LDIFError{Line: lineNo, Incomplete: true, Msg: fmt.Sprintf(
			"the file ends with an empty continuation line: the value folded at line %d was cut off; nothing is applied from an incomplete file (export again)", logicalStart)}
	}
	if err := flushLine(); err != nil {
		return nil, err
	}
	endRecord()
	return entries, nil
}

func ldifParseLine(line string, lineNo int, cur **LDIFEntry, entries *[]LDIFEntry, sawRecord, changeSeen *bool) error {
	name, value, err := ldifSplitLine(line, lineNo)
	if err != nil {
		return err
	}
	lname := strings.ToLower(name)
	if *cur == nil {
		switch lname {
		case "version":
			if *sawRecord || len(*entries) > 0 {
				return &LDIFError{Line: lineNo, Msg: "\"version:\" is only allowed before the first record"}
			}
			if strings.TrimSpace(value) != "1" {
				return &LDIFError{Line: lineNo, Msg: fmt.Sprintf("unsupported LDIF version %q (only 1)", value)}
			}
			*sawRecord = true
			return nil
		case "dn":
			*cur = &LDIFEntry{DN: value, Line: lineNo, Attrs: map[string][]string{}, Names: map[string]string{}}
			*sawRecord = true
			return nil
		default:
			return &LDIFError{Line: lineNo, Msg: fmt.Sprintf("a record must start with \"dn:\", found %q (is a blank line missing or one too many?)", name)}
		}
	}
	switch lname {
	case "dn":
		return &LDIFError{Line: lineNo, Msg: fmt.Sprintf("second \"dn:\" in the record that starts at line %d: separate records with a blank line", (*cur).Line)}
	case "changetype":
		if *changeSeen || len((*cur).Attrs) > 0 {
			return &LDIFError{Line: lineNo, Msg: "\"changetype:\" must directly follow the \"dn:\" line"}
		}
		*changeSeen = true
		if !strings.EqualFold(strings.TrimSpace(value), "add") {
			return &LDIFError{Line: lineNo, Msg: fmt.Sprintf("changetype %q is not supported: give a content LDIF (records without changetype, or changetype: add)", value)}
		}
		return nil
	case "control":
		return &LDIFError{Line: lineNo, Msg: "LDIF controls are not supported: give a content LDIF"}
	case "-":
		return &LDIFError{Line: lineNo, Msg: "\"-\" separator of a modify record: only content records (or changetype: add) are supported"}
	}
	if _, ok := (*cur).Names[lname]; !ok {
		(*cur).Names[lname] = name
	}
	(*cur).Attrs[lname] = append((*cur).Attrs[lname], value)
	return nil
}

// ldifSplitLine splits "name: value", "name:: base64" and rejects "name:< url".
func ldifSplitLine(line string, lineNo int) (name, value string, err error) {
	i := strings.IndexByte(line, ':')
	if i <= 0 {
		if line == "-" {
			return "-", "", nil
		}
		return "", "", &LDIFError{Line: lineNo, Msg: fmt.Sprintf("expected \"attribute: value\", found %q", ldifClip(line))}
	}
	name = line[:i]
	if !ldifValidAttrDescription(name) {
		return "", "", &LDIFError{Line: lineNo, Msg: fmt.Sprintf("invalid attribute name %q", ldifClip(name))}
	}
	rest := line[i+1:]
	switch {
	case strings.HasPrefix(rest, ":"):
		enc := strings.TrimSpace(rest[1:])
		b, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			return "", "", &LDIFError{Line: lineNo, Msg: fmt.Sprintf("attribute %s: invalid base64 value: %v", name, err)}
		}
		return name, string(b), nil
	case strings.HasPrefix(rest, "<"):
		return "", "", &LDIFError{Line: lineNo, Msg: fmt.Sprintf("attribute %s: URL values (\":<\") are not supported: inline the value, base64-encoded with \"::\"", name)}
	default:
		return name, strings.TrimLeft(rest, " "), nil
	}
}

// ldifValidAttrDescription accepts an attribute type (name or OID) with options: AttributeDescription
// of RFC 4512, leniently (underscores allowed, as some exports have them).
func ldifValidAttrDescription(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == ';', r == '.', r == '_':
		default:
			return false
		}
	}
	return true
}

func ldifClip(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}
