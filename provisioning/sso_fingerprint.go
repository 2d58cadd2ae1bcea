package provisioning

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// secretFingerprint is how bridge knows whether the SSO client secret changed although
// babelforce never shows it: a random per-installation key and HMAC-SHA256(key, secret) of
// the secret last written to babelforce. Never the secret. It lives in the reconciler's state
// (the store all replicas share, or sync.state_file).
type secretFingerprint struct {
	Key         string `json:"key"`
	Fingerprint string `json:"fingerprint,omitempty"`
}

func ssoNewKey() (string, error) {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return "", fmt.Errorf("generate fingerprint key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(k), nil
}

func ssoFingerprint(key, secret string) (string, error) {
	k, err := base64.StdEncoding.DecodeString(key)
	if err != nil {
		return "", fmt.Errorf("fingerprint key: %w", err)
	}
	m := hmac.New(sha256.New, k)
	m.Write([]byte(secret))
	return base64.StdEncoding.EncodeToString(m.Sum(nil)), nil
}

// matches reports whether a fingerprint is recorded (known) and whether it is the secret's.
func (f *secretFingerprint) matches(secret string) (known, matches bool, err error) {
	if f == nil || f.Fingerprint == "" {
		return false, false, nil
	}
	got, err := ssoFingerprint(f.Key, secret)
	if err != nil {
		return false, false, err
	}
	return true, hmac.Equal([]byte(got), []byte(f.Fingerprint)), nil
}

// recordSecret stores the fingerprint of secret in st (a new key the first time).
func recordSecret(st *state, secret string) error {
	if st.SSOSecret == nil || st.SSOSecret.Key == "" {
		key, err := ssoNewKey()
		if err != nil {
			return err
		}
		st.SSOSecret = &secretFingerprint{Key: key}
	}
	fp, err := ssoFingerprint(st.SSOSecret.Key, secret)
	if err != nil {
		return err
	}
	st.SSOSecret.Fingerprint = fp
	return nil
}

// readFingerprintFile reads the fingerprint file of sso.fingerprint_file (deprecated: the
// fingerprint is now in the reconciler's state); nil when there is none.
func readFingerprintFile(path string) (*secretFingerprint, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read sso.fingerprint_file: %w", err)
	}
	var f secretFingerprint
	if err := json.Unmarshal(b, &f); err != nil || f.Key == "" {
		return nil, fmt.Errorf("sso.fingerprint_file %s is damaged (remove the setting: the secret is then sent once more): %v", path, err)
	}
	return &f, nil
}
