package main

import (
	"fmt"
	"time"
)

// MessageEvent is one chat message as it travels through Kafka. It is
// produced to the chat topic keyed by ConversationID, so all messages of a
// conversation land on the same partition and are consumed in order.
type MessageEvent struct {
	ID             string    `json:"id"`
	ConversationID string    `json:"conversation_id"`
	SenderID       string    `json:"sender_id"`
	Body           string    `json:"body"`
	SentAt         time.Time `json:"sent_at"`
}

// newEvents returns n chat messages spread round-robin over the given number
// of conversations. Their IDs start with runID, so the messages of one run can
// be told apart from earlier runs' in the database and the backup file.
func newEvents(runID string, n, conversations int) []MessageEvent {
	events := make([]MessageEvent, n)
	now := time.Now().UTC()
	for i := range events {
		conv := i % conversations
		events[i] = MessageEvent{
			ID:             fmt.Sprintf("%s-%06d", runID, i),
			ConversationID: fmt.Sprintf("conv-%03d", conv),
			SenderID:       fmt.Sprintf("user-%03d", (i/conversations)%2+2*conv), // two participants per conversation
			Body:           fmt.Sprintf("message %d of conversation %d", i/conversations, conv),
			SentAt:         now.Add(time.Duration(i) * time.Millisecond),
		}
	}
	return events
}

// idPrefix is the prefix every message ID of the run carries.
func idPrefix(runID string) string { return runID + "-" }
