package topics

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/segmentio/kafka-go"
)

func TestRefusedTellsWhatRetryingDoesNotFix(t *testing.T) {
	cases := []struct {
		err  error
		want bool
	}{
		{kafka.WriteErrors{nil, kafka.MessageSizeTooLarge}, true},
		{fmt.Errorf("x: %w", kafka.TopicAuthorizationFailed), true},
		{kafka.WriteErrors{kafka.NotLeaderForPartition, nil}, false},
		{kafka.LeaderNotAvailable, false},
		{context.DeadlineExceeded, false},
		{errors.New("connection refused"), false},
	}
	for _, c := range cases {
		if got := refused(c.err); got != c.want {
			t.Errorf("refused(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
