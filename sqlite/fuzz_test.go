package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/vouch-dev/vouch/sqlite"
	"github.com/vouch-dev/vouch/test/storetest"
)

func FuzzVerifyExport(f *testing.F) {
	db, err := sqlite.New(context.Background(), sqlite.Config{Path: filepath.Join(f.TempDir(), "vouch.db")})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	storetest.FuzzVerifyExport(f, db)
}
