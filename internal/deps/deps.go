package deps
import (
 _ "github.com/hashicorp/raft"
 _ "github.com/hashicorp/raft-boltdb/v2"
 _ "github.com/hashicorp/memberlist"
 _ "github.com/hashicorp/go-hclog"
 _ "github.com/vmihailenco/msgpack/v5"
 _ "github.com/prometheus/client_golang/prometheus"
 _ "github.com/prometheus/client_golang/prometheus/promhttp"
 _ "github.com/google/uuid"
 _ "github.com/spf13/cobra"
 _ "github.com/alibabacloud-go/kms-20160120/v3/client"
 _ "github.com/alibabacloud-go/darabonba-openapi/v2/client"
 _ "github.com/alibabacloud-go/tea/tea"
 _ "github.com/hashicorp/golang-lru/v2"
)
