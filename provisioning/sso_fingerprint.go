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
	"path/filepath"
	"sync"
)

// ssoFingerprintFile is what the fingerprint file holds: a random per-installation key and
// HMAC-SHA256(key, secret) of the client secret last written to babelforce. Never the secret.
type ssoFingerprintFile struct {
	Version     int    `json:"version"`
	Key         string `json:"key"`
	Fingerprint string `json:"fingerprint,omitempty"`
}

// ssoFingerprintStore keeps the fingerprint in a file (0600, replaced atomically), or in
// memory when path is empty.
type ssoFingerprintStore struct {
	path string

	mu  sync.Mutex
	mem *ssoFingerprintFile
}

func (s *ssoFingerprintStore) load() (*ssoFingerprintFile, error) {
	if s.path == "" {
		if s.mem == nil {
			key, err := ssoNewKey()
			if err != nil {
				return nil, err
			}
			s.mem = &ssoFingerprintFile{Version: 1, Key: key}
		}
		cp := *s.mem
		return &cp, nil
	}
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err := ssoNewKey()
		if err != nil {
			return nil, err
		}
		return &ssoFingerprintFile{Version: 1, Key: key}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read secret fingerprint file: %w", err)
	}
	var f ssoFingerprintFile
	if err := json.Unmarshal(b, &f); err != nil || f.Key == "" {
		return nil, fmt.Errorf("secret fingerprint file %s is damaged (delete it: the secret is then sent once more): %v", s.path, err)
	}
	return &f, nil
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
func (s *ssoFingerprintStore) matches(secret string) (known, matches bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := s.load()
	if err != nil {
		return false, false, err
	}
	if f.Fingerprint == "" {
		return false, false, nil
	}
	got, err := ssoFingerprint(f.Key, secret)
	if err != nil {
		return false, false, err
	}
	return true, hmac.Equal([]byte(got), []byte(f.Fingerprint)), nil
}

// record stores the fingerprint of secret.
func (s *ssoFingerprintStore) record(secret string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := s.load()
	if err != nil {
		return err
	}
	if f.Fingerprint, err = ssoFingerprint(f.Key, secret); err != nil {
		return err
	}
	if s.path == "" {
		s.mem = f
		return nil
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.path), ".sso-fingerprint-*")
	if err != nil {
		return fmt.Errorf("write secret fingerprint file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write secret fingerprint file: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write secret fingerprint file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write secret fingerprint file: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		return fmt.Errorf("write secret fingerprint file %s: %w", s.path, err)
	}
	return nil
}
