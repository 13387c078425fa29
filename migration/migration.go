// Package migration lists the embedded SQL migrations of a storage adapter:
// files named NNNN_description.sql, applied in version order.
package migration

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// File is one migration.
type File struct {
	Version int
	Name    string
	SQL     string
}

// Pending returns the migrations in fsys (a directory of *.sql files) with
// a version above current, in version order.
func Pending(fsys fs.FS, current int) ([]File, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, err
	}
	var out []File
	for _, name := range names {
		v, err := strconv.Atoi(strings.SplitN(path.Base(name), "_", 2)[0])
		if err != nil {
			return nil, fmt.Errorf("migration %s: name does not start with a version number", name)
		}
		if v <= current {
			continue
		}
		src, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		out = append(out, File{Version: v, Name: name, SQL: string(src)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("migrations %s and %s have the same version", out[i-1].Name, out[i].Name)
		}
	}
	return out, nil
}

// Plan returns the versions (current, the database's; the highest in fsys,
// the binary's) and the migrations to apply: Pending, read once.
func Plan(fsys fs.FS, current int) (Versions, []File, error) {
	all, err := Pending(fsys, 0)
	if err != nil {
		return Versions{}, nil, err
	}
	var v Versions
	if len(all) > 0 {
		v.Known = all[len(all)-1].Version
	}
	v.Found = max(current, v.Known)
	first := sort.Search(len(all), func(i int) bool { return all[i].Version > current })
	return v, all[first:], nil
}

// Versions are a database's schema version and the one a binary knows.
// Found above Known means a newer Vouch migrated the database: this binary
// works on it only as far as the migrations were backward compatible.
type Versions struct{ Found, Known int }

// Ahead reports whether the database is newer than the binary.
func (v Versions) Ahead() bool { return v.Found > v.Known }
