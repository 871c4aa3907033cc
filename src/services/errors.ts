// Errors the platform reports to API and CLI users: a stable code and a clear message.
export type PlatformErrorCode = 'InvalidArgument' | 'NotFound' | 'Conflict' | 'Unauthenticated' | 'Forbidden' | 'Internal';

export class PlatformError extends Error {
  constructor(
    readonly code: PlatformErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'PlatformError';
  }
}

export const invalid = (message: string) => new PlatformError('InvalidArgument', message);
export const notFound = (message: string) => new PlatformError('NotFound', message);
export const conflict = (message: string) => new PlatformError('Conflict', message);
