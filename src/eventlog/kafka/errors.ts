import { BadInputError, FatalError, StarstreamError, TransientError } from '../../errors/index.ts';

/**
 * Maps what kafkajs throws onto the error taxonomy. Duck-typed on `name`, `type` and `retriable`, so errors
 * from another copy of kafkajs (or built in tests) classify the same. Codes are `KAFKA_<kafka error type>` for
 * broker answers and a few fixed ones for client-side failures.
 */

/** Broker answers that no retry fixes: credentials, ACLs, requests the cluster refuses by configuration. */
const FATAL_TYPES: ReadonlySet<string> = new Set([
  'SASL_AUTHENTICATION_FAILED',
  'ILLEGAL_SASL_STATE',
  'UNSUPPORTED_SASL_MECHANISM',
  'TOPIC_AUTHORIZATION_FAILED',
  'GROUP_AUTHORIZATION_FAILED',
  'CLUSTER_AUTHORIZATION_FAILED',
  'TRANSACTIONAL_ID_AUTHORIZATION_FAILED',
  'DELEGATION_TOKEN_AUTHORIZATION_FAILED',
  'SECURITY_DISABLED',
  'UNSUPPORTED_VERSION',
  'UNSUPPORTED_FOR_MESSAGE_FORMAT',
  'UNSUPPORTED_COMPRESSION_TYPE',
  'INVALID_CONFIG',
  'INVALID_REQUEST',
  'INVALID_REQUIRED_ACKS',
  'INVALID_TOPIC_EXCEPTION',
  'INVALID_PARTITIONS',
  'INVALID_REPLICATION_FACTOR',
  'INVALID_REPLICA_ASSIGNMENT',
  'INVALID_GROUP_ID',
  'INVALID_SESSION_TIMEOUT',
  'INCONSISTENT_GROUP_PROTOCOL',
  'POLICY_VIOLATION',
  'TOPIC_DELETION_DISABLED',
  'GROUP_MAX_SIZE_REACHED',
  'FENCED_INSTANCE_ID',
]);

/** Broker answers about one record: it goes to the DLQ, the stream goes on. */
const BAD_INPUT_TYPES: ReadonlySet<string> = new Set([
  'MESSAGE_TOO_LARGE',
  'RECORD_LIST_TOO_LARGE',
  'CORRUPT_MESSAGE',
  'INVALID_RECORD',
  'INVALID_TIMESTAMP',
]);

/** Client-side failures that a later call may not repeat: the network, metadata, a coordinator moving. */
const TRANSIENT_NAMES: Readonly<Record<string, string>> = {
  KafkaJSConnectionError: 'KAFKA_CONNECTION',
  KafkaJSConnectionClosedError: 'KAFKA_CONNECTION',
  KafkaJSRequestTimeoutError: 'KAFKA_REQUEST_TIMEOUT',
  KafkaJSTimeout: 'KAFKA_TIMEOUT',
  KafkaJSLockTimeout: 'KAFKA_TIMEOUT',
  KafkaJSBrokerNotFound: 'KAFKA_BROKER_NOT_FOUND',
  KafkaJSNoBrokerAvailableError: 'KAFKA_NO_BROKER',
  KafkaJSMetadataNotLoaded: 'KAFKA_METADATA',
  KafkaJSTopicMetadataNotLoaded: 'KAFKA_METADATA',
  KafkaJSStaleTopicMetadataAssignment: 'KAFKA_METADATA',
  KafkaJSGroupCoordinatorNotFound: 'KAFKA_COORDINATOR',
  KafkaJSOffsetOutOfRange: 'KAFKA_OFFSET_OUT_OF_RANGE',
};

/** Node's TLS failures: a wrong CA or host name does not heal by retrying. */
const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|HOSTNAME_MISMATCH)/;

interface KafkaJsLike {
  readonly name?: unknown;
  readonly message?: unknown;
  readonly type?: unknown;
  readonly code?: unknown;
  readonly retriable?: unknown;
  readonly cause?: unknown;
  readonly originalError?: unknown;
  readonly errors?: unknown;
}

/** Classifies any error thrown by kafkajs; taxonomy errors pass through unchanged. */
export function classifyKafkaError(err: unknown): StarstreamError {
  if (err instanceof StarstreamError) return err;
  if (typeof err !== 'object' || err === null) {
    return new FatalError('KAFKA_UNEXPECTED', `kafkajs threw ${String(err)}`, { cause: err });
  }
  const e = err as KafkaJsLike;
  const name = typeof e.name === 'string' ? e.name : '';
  const message = typeof e.message === 'string' ? e.message : String(err);

  // The client gave up (or wrapped what it gave up on as non-retriable), but the cause keeps its nature: a
  // broker that stayed down through the client's retries may be back later, so that is still transient.
  const wrapsCause = name === 'KafkaJSNonRetriableError' && (e.cause ?? e.originalError) !== undefined;
  if (name === 'KafkaJSNumberOfRetriesExceeded' || wrapsCause) {
    const inner = classifyKafkaError(e.cause ?? e.originalError);
    const Family =
      inner.family === 'transient'
        ? TransientError
        : inner.family === 'bad-input'
          ? BadInputError
          : FatalError;
    return new Family(inner.code, `${inner.message} (client retries exhausted)`, { cause: err });
  }
  if (name === 'KafkaJSAggregateError' && Array.isArray(e.errors) && e.errors.length > 0) {
    const inner = e.errors.map(classifyKafkaError);
    return (
      inner.find((i) => i.family === 'fatal') ?? inner.find((i) => i.family === 'bad-input') ?? inner[0]!
    );
  }
  if (name === 'KafkaJSSASLAuthenticationError') return new FatalError('KAFKA_AUTH', message, { cause: err });
  if (name === 'KafkaJSServerDoesNotSupportApiKey') {
    return new FatalError('KAFKA_UNSUPPORTED_API', message, { cause: err });
  }
  if (typeof e.type === 'string' && e.type.length > 0) {
    const code = `KAFKA_${e.type}`;
    if (FATAL_TYPES.has(e.type)) return new FatalError(code, message, { cause: err });
    if (BAD_INPUT_TYPES.has(e.type)) return new BadInputError(code, message, { cause: err });
    if (e.retriable === true) return new TransientError(code, message, { cause: err });
    return new FatalError(code, message, { cause: err });
  }
  if (name === 'KafkaJSConnectionError' && typeof e.code === 'string' && TLS_CODE.test(e.code)) {
    return new FatalError('KAFKA_TLS', message, { cause: err });
  }
  const transientCode = TRANSIENT_NAMES[name];
  if (transientCode) return new TransientError(transientCode, message, { cause: err });
  if (name.startsWith('KafkaJS')) {
    return e.retriable === true
      ? new TransientError('KAFKA_ERROR', message, { cause: err })
      : new FatalError('KAFKA_ERROR', message, { cause: err });
  }
  return new FatalError('KAFKA_UNEXPECTED', message, { cause: err });
}

/** A rebalance or a generation change: the batch in flight loses its partitions and must not commit. */
export function isRebalanceError(err: unknown): boolean {
  const type = (err as KafkaJsLike | null)?.type;
  return type === 'REBALANCE_IN_PROGRESS' || type === 'ILLEGAL_GENERATION' || type === 'UNKNOWN_MEMBER_ID';
}
