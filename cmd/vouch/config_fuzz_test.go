package main

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoadConfig loads arbitrary YAML files and one arbitrary flag: the
// loader returns an error or a configuration that validates again; it
// never panics.
func FuzzLoadConfig(f *testing.F) {
	example, err := os.ReadFile("../../examples/vouch.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example, "--journal-max-delay=2ms")
	f.Add([]byte("api_addr: \":9000\"\nenvironments:\n  prod:\n    namespaces: [\"prod-*\"]\n    require: [digest]\n"), "--api-insecure")
	f.Add([]byte("journal_max_delay: 5\n"), "--max-body=1MiB")
	f.Add([]byte("{{{"), "--database-url=postgres://x")
	f.Add([]byte("environments: [1, 2]\n"), "--environment-file=/nonexistent")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, yaml []byte, flag string) {
		file := filepath.Join(dir, "vouch.yaml")
		if err := os.WriteFile(file, yaml, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := loadConfig([]string{"--config", file, "--data-dir", dir, flag}, env(nil))
		if err != nil {
			return
		}
		if err := cfg.validate(); err != nil {
			t.Fatalf("a loaded configuration does not validate again: %v", err)
		}
	})
}

func TestExampleConfigLoads(t *testing.T) {
	if _, err := loadConfig([]string{"--config", "../../examples/vouch.yaml", "--data-dir", t.TempDir()}, env(nil)); err != nil {
		t.Fatal(err)
	}
}
