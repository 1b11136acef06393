package tunnel_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestRunLeavesNoConnection: once Run has returned, the client holds no
// connection to the local app, which outlives it (the app's keep-alive
// connection would otherwise hold two goroutines here, and one in the
// app, until the transport's idle timeout).
func TestRunLeavesNoConnection(t *testing.T) {
	fr := newFakeRelay(t, fastServer())
	a := newApp(t)
	before := goleak.IgnoreCurrent()
	rc := startClient(t, clientConfig(fr.URL, a.URL))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := fr.send(ctx, "/", "payment", []byte("{}")); err != nil {
		t.Fatalf("Send: %v", err)
	}
	rc.stop(t)
	if err := goleak.Find(before); err != nil {
		t.Errorf("after Run returned: got goroutines left, want none:\n%v", err)
	}
}
