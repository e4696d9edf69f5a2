package alarm

import (
	"errors"
	"testing"
)

func TestFromFields(t *testing.T) {
	acct := func(kv ...string) map[string]string {
		m := map[string]string{FieldAccount: "1234"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name   string
		fields map[string]string
		def    string
		want   Signal
		err    error
	}{
		{"burglary by name", acct(FieldEvent, "burglary", FieldZone, "3", FieldPartition, "1"), "",
			Signal{Account: "1234", Qualifier: New, CID: 130, SIA: "BA", Partition: 1, Zone: 3}, nil},
		{"fire restore", acct(FieldEvent, "fire", FieldQualifier, "restore"), "",
			Signal{Account: "1234", Qualifier: Restore, CID: 110, SIA: "FR"}, nil},
		{"SIA code", acct(FieldEvent, "PA"), "", Signal{Account: "1234", Qualifier: New, CID: 120, SIA: "PA"}, nil},
		{"SIA restore code", acct(FieldEvent, "BR"), "", Signal{Account: "1234", Qualifier: Restore, CID: 130, SIA: "BR"}, nil},
		{"Contact ID code", acct(FieldEvent, "301"), "", Signal{Account: "1234", Qualifier: New, CID: 301, SIA: "AT"}, nil},
		{"Contact ID code outside the table", acct(FieldEvent, "570"), "", Signal{Account: "1234", Qualifier: New, CID: 570}, nil},
		{"close by user", acct(FieldEvent, "close", FieldUser, "12"), "",
			Signal{Account: "1234", Qualifier: Restore, CID: 401, SIA: "CL", Zone: 12, IsUser: true}, nil},
		{"open", acct(FieldEvent, "Open"), "", Signal{Account: "1234", Qualifier: New, CID: 401, SIA: "OP"}, nil},
		{"tamper", acct(FieldEvent, "sensor-tamper"), "", Signal{Account: "1234", Qualifier: New, CID: 144, SIA: "TA"}, nil},
		{"text cleaned", acct(FieldEvent, "low_battery", FieldText, " Hall [PIR]|\n2 "), "",
			Signal{Account: "1234", Qualifier: New, CID: 302, SIA: "YT", Text: "Hall PIR 2"}, nil},
		{"unknown event", acct(FieldEvent, "zombie"), "", Signal{}, ErrUnknownEvent},
		{"unknown event, default", acct(FieldEvent, "zombie"), "burglary", Signal{Account: "1234", Qualifier: New, CID: 130, SIA: "BA"}, nil},
		{"missing event", acct(), "", Signal{}, ErrUnknownEvent},
		{"bad account", map[string]string{FieldAccount: "12G4", FieldEvent: "fire"}, "", Signal{}, ErrInvalid},
		{"zone and user", acct(FieldEvent, "fire", FieldZone, "1", FieldUser, "2"), "", Signal{}, ErrInvalid},
		{"partition too big", acct(FieldEvent, "fire", FieldPartition, "100"), "", Signal{}, ErrInvalid},
		{"bad qualifier", acct(FieldEvent, "fire", FieldQualifier, "maybe"), "", Signal{}, ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FromFields(tc.fields, tc.def)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}
