package provisioning

import (
	"context"

	"github.com/babelforce/bridge/babelforce"
	"github.com/babelforce/bridge/directory"
)

// Source is where the desired state comes from: a whole directory, or an error.
// directory.Reader satisfies it.
type Source interface {
	Read(ctx context.Context) (*directory.Snapshot, error)
}

// Target is the part of babelforce the reconciler reads and writes: what its read side needs
// (ActualReader, used by plan, explain and the run's scope lookups) and what its apply side
// needs (Writer). The reconciler keeps the two apart, so that planning cannot write.
// *babelforce.Client satisfies it.
type Target interface {
	ActualReader
	Writer
}

var _ Target = (*babelforce.Client)(nil)
