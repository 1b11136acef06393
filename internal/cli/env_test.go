package cli

import "testing"

func TestMemoryLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, flag, def string
		want            int64
		wantErr         bool
	}{
		{name: "relay default", def: relayMemoryLimit, want: 128 << 20},
		{name: "server default", def: defaultMemoryLimit, want: 160 << 20},
		{name: "given wins", flag: "192MiB", def: relayMemoryLimit, want: 192 << 20},
		{name: "blank is the default", flag: "  ", def: relayMemoryLimit, want: 128 << 20},
		{name: "zero is none", flag: "0", def: relayMemoryLimit, want: 0},
		{name: "zero default is none", def: "0", want: 0},
		{name: "bad", flag: "lots", def: relayMemoryLimit, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := memoryLimit(tt.flag, tt.def)
			if (err != nil) != tt.wantErr {
				t.Fatalf("memoryLimit(%q, %q): error %v, want error %v", tt.flag, tt.def, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("memoryLimit(%q, %q) = %d, want %d", tt.flag, tt.def, got, tt.want)
			}
		})
	}
}
