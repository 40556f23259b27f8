import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface HttpMetrics {
  /** Client WebSocket protocol errors (bad frames, oversized messages): the client's fault, so counted, not logged loud. */
  wsProtocolErrors: Counter;
  /** Stream clients cut off because they did not read within the backlog bound. */
  streamClientsCut: Counter;
  /** Frames written to chat stream sockets (one socket write each) and their bytes: a turn's cost on the wire. */
  streamFrames: Counter;
  streamFrameBytes: Counter;
  /** Requests answered 503 because the connection cap was reached. */
  connectionsRefused: Counter;
  /** Coder's names (coderd/httpmw/prometheus.go), so its dashboards carry over. `path` is the route template. */
  requestsProcessed: Counter<'code' | 'method' | 'path'>;
  requestLatency: Histogram<'method' | 'path'>;
  concurrentRequests: Gauge;
  concurrentWebsockets: Gauge;
  websocketDuration: Histogram<'path'>;
  /** WebSockets closed with 1008 because their key was revoked or their user deleted or suspended. */
  socketsRevoked: Counter;
}

export function createHttpMetrics(registry: Registry): HttpMetrics {
  const registers = [registry];
  return {
    wsProtocolErrors: new Counter({ name: 'coderlite_http_websocket_protocol_errors_total', help: 'WebSocket protocol errors caused by clients.', registers }),
    streamClientsCut: new Counter({ name: 'coderlite_http_stream_clients_cut_total', help: 'Stream clients closed with 1013 for not reading.', registers }),
    streamFrames: new Counter({ name: 'coderlite_http_stream_frames_total', help: 'WebSocket frames written to chat and chat-list streams.', registers }),
    streamFrameBytes: new Counter({ name: 'coderlite_http_stream_frame_bytes_total', help: 'Payload bytes of the frames written to chat and chat-list streams.', registers }),
    connectionsRefused: new Counter({ name: 'coderlite_http_connections_refused_total', help: 'Requests answered 503 at the connection cap.', registers }),
    requestsProcessed: new Counter({
      name: 'coderd_api_requests_processed_total',
      help: 'The total number of processed API requests.',
      labelNames: ['code', 'method', 'path'],
      registers,
    }),
    requestLatency: new Histogram({
      name: 'coderd_api_request_latencies_seconds',
      help: 'Latency distribution of requests in seconds.',
      labelNames: ['method', 'path'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5, 10, 30],
      registers,
    }),
    concurrentRequests: new Gauge({ name: 'coderd_api_concurrent_requests', help: 'The number of concurrent API requests.', registers }),
    concurrentWebsockets: new Gauge({ name: 'coderd_api_concurrent_websockets', help: 'The total number of concurrent API websockets.', registers }),
    websocketDuration: new Histogram({
      name: 'coderd_api_websocket_durations_seconds',
      help: 'Websocket duration distribution of requests in seconds.',
      labelNames: ['path'],
      buckets: [0.001, 1, 60, 3600, 10 * 3600, 30 * 3600],
      registers,
    }),
    socketsRevoked: new Counter({ name: 'coderlite_http_websockets_revoked_total', help: 'WebSockets closed with 1008 after their key or user was revoked.', registers }),
  };
}
