/**
 * On Node below 22, the AWS SDK's first KMS client prints a nine-line NodeVersionSupportWarning. The
 * commands that make one (`up`, `model seal`) call this just before: the SDK is kept quiet (and so
 * are the processes they start, which inherit the variable) and the notice is said in one line. A
 * variable the user set is left as it is.
 */
export function noteAwsSdkNodeSupport(): void {
  const VARIABLE = 'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED';
  if (Number(process.versions.node.split('.')[0]) >= 22 || process.env[VARIABLE] !== undefined) return;
  process.env[VARIABLE] = 'true';
  process.stderr.write(`teegate: note: running on Node ${process.version}; AWS SDK releases after the first week of January 2027 need Node 22 or later\n`);
}
