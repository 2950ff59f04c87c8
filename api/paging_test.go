package api_test

import (
	"errors"
	"testing"

	"github.com/raftkms/raftkms/client"
)

// TestPaging_HugePageNumberIsNotAServerError: a PageNumber far past the end
// is a client's request for an empty page (or an invalid parameter), never
// a server error. kms.Page.bounds (kms/keys.go) computes
// (PageNumber-1)*PageSize in int, which overflows for PageNumber near 2^63
// (or 2^63/PageSize): the start index turns negative, slicing panics, and
// the API's recover answers 500 InternalFailure.
func TestPaging_HugePageNumberIsNotAServerError(t *testing.T) {
	tn := startNode(t)
	key := tn.createKey(t, "paging")
	tn.must(t, "CreateAlias", map[string]string{"AliasName": "alias/paging", "KeyId": key}, nil)
	for _, action := range []string{"ListKeys", "ListKeyVersions", "ListAliases", "ListAliasesByKeyId"} {
		for _, page := range []string{"9223372036854775807", "4611686018427387904", "922337203685477581"} {
			t.Run(action+"/"+page, func(t *testing.T) {
				params := map[string]string{"PageNumber": page, "PageSize": "100", "KeyId": key}
				if action == "ListKeys" || action == "ListAliases" {
					delete(params, "KeyId")
				}
				resp, err := tn.call(t, action, params)
				var ae *client.APIError
				switch {
				case err == nil:
					var out struct{ TotalCount int }
					resp.Decode(&out)
					if out.TotalCount == 0 {
						t.Errorf("TotalCount 0")
					}
				case errors.As(err, &ae) && ae.StatusCode == 400 && ae.Code == "InvalidParameter":
				default:
					t.Errorf("PageNumber %s: %v, want an empty page or 400 InvalidParameter", page, err)
				}
			})
		}
	}
}
