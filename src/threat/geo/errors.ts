// The one error of the GeoIP data: a database file that cannot be used, named with the reason.

export class GeoDataError extends Error {
  override readonly name = 'GeoDataError';
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`GeoIP data file ${file} cannot be used: ${reason}`);
  }
}
