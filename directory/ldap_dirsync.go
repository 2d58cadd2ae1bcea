package directory

import (
	"context"
	"errors"
)

func (s *ldapStream) dirSync(ctx context.Context, sc streamCookie, resumed bool, changed func(ChangeSet)) error {
	return errors.New("todo")
}
