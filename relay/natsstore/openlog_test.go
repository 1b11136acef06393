package natsstore

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// The open line names the ack wait as the configuration writes it ("5s"),
// not as a bare number of milliseconds (5000) an operator must guess the
// unit of.
func TestOpenLogsAckWaitWithItsUnit(t *testing.T) {
	srv := startServer(t, nil)
	var buf bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Open(ctx, Config{Servers: []string{srv.ClientURL()}, AckWait: 5 * time.Second, Logger: zerolog.New(zerolog.SyncWriter(&buf))})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	var line map[string]any
	for _, b := range bytes.Split(buf.Bytes(), []byte("\n")) {
		var l map[string]any
		if json.Unmarshal(b, &l) == nil && l["message"] == "nats store open" {
			line = l
		}
	}
	if line == nil || line["ack_wait"] != "5s" {
		t.Errorf("open line %v: want ack_wait \"5s\"", line)
	}
}
